import Crypto
import UkeyCodec

/// The bytes of `store.sealed` (all integers big-endian):
///
/// ```
/// "UKEYSTR1"                      8 bytes
/// protector name                  u8 length + UTF-8
/// wrapped store key               u16 length + bytes (the protector's blob)
/// generation                      u64
/// body                            AES-256-GCM: 12-byte nonce, ciphertext, 16-byte tag
/// ```
///
/// The body's associated data is everything before it, so every byte of the file is
/// authenticated. The body's plaintext is the records: u32 count, then per record (sorted by
/// name) u16 name length, name, u32 value length, value.
package enum StoreFileFormat {
    static let magic = Array("UKEYSTR1".utf8)

    package struct Header {
        let protectorName: String
        let wrappedKey: [UInt8]
        let generation: UInt64
        /// Offset of the body; the bytes before it are the body's associated data.
        package let bodyOffset: Int
    }

    package static func seal(
        records: [String: [UInt8]],
        generation: UInt64,
        protectorName: String,
        wrappedKey: [UInt8],
        key: SymmetricKey,
        path: String
    ) throws(StoreError) -> [UInt8] {
        var header = magic
        header.append(UInt8(protectorName.utf8.count))
        header += protectorName.utf8
        header += bigEndian(UInt16(wrappedKey.count))
        header += wrappedKey
        header += bigEndian(generation)

        var plaintext = bigEndian(UInt32(records.count))
        for name in records.keys.sorted() {
            let value = records[name]!
            plaintext += bigEndian(UInt16(name.utf8.count))
            plaintext += name.utf8
            plaintext += bigEndian(UInt32(value.count))
            plaintext += value
        }
        defer { for index in plaintext.indices { plaintext[index] = 0 } }
        do {
            let box = try AES.GCM.seal(plaintext, using: key, authenticating: header)
            return header + Array(box.combined!)
        } catch {
            throw StoreError(.io, path: path, "cannot seal the store: \(error)")
        }
    }

    package static func parseHeader(_ bytes: [UInt8], path: String) throws(StoreError) -> Header {
        var reader = makeReader(bytes, "the sealed store", path: path)
        guard try reader.read(8, "magic") == magic else {
            throw StoreError(.integrity, path: path, "integrity check failed: not a ukey sealed store (bad magic)")
        }
        let nameLength = Int(try reader.u8("protector name length"))
        guard let name = String(validating: try reader.read(nameLength, "protector name"), as: UTF8.self) else {
            throw StoreError(.integrity, path: path, "integrity check failed: the protector name is not text")
        }
        let keyLength = Int(try reader.u16("wrapped key length"))
        let wrapped = try reader.read(keyLength, "wrapped key")
        let generation = try reader.u64("generation")
        guard reader.remaining >= 12 + 16 else {
            throw StoreError(.integrity, path: path, "integrity check failed: the sealed body is truncated")
        }
        return Header(protectorName: name, wrappedKey: wrapped, generation: generation, bodyOffset: reader.offset)
    }

    package static func openBody(
        _ bytes: [UInt8],
        header: Header,
        key: SymmetricKey,
        path: String
    ) throws(StoreError) -> [String: [UInt8]] {
        var plaintext: [UInt8]
        do {
            let box = try AES.GCM.SealedBox(combined: bytes[header.bodyOffset...])
            plaintext = Array(try AES.GCM.open(box, using: key, authenticating: bytes[..<header.bodyOffset]))
        } catch {
            throw StoreError(
                .integrity,
                path: path,
                "integrity check failed: the sealed records do not authenticate (the file was modified or truncated)"
            )
        }
        // The records are read in a scope of their own, so the reader (which shares the plaintext's
        // storage) is gone before the plaintext is zeroed in place rather than copied on write.
        let records: Result<[String: [UInt8]], StoreError> = {
            // Authenticated, so malformed content means a bug in a writer, not an attacker; still checked.
            var reader = makeReader(plaintext, "the sealed records", path: path)
            do throws(StoreError) {
                let count = try reader.u32("record count")
                var records: [String: [UInt8]] = [:]
                for _ in 0..<count {
                    let nameLength = Int(try reader.u16("record name length"))
                    guard let name = String(validating: try reader.read(nameLength, "record name"), as: UTF8.self)
                    else {
                        throw StoreError(.integrity, path: path, "integrity check failed: a record name is not text")
                    }
                    let valueLength = Int(try reader.u32("record length"))
                    records[name] = try reader.read(valueLength, "record")
                }
                guard reader.isAtEnd else {
                    throw StoreError(.integrity, path: path, "integrity check failed: trailing bytes after the records")
                }
                return .success(records)
            } catch {
                return .failure(error)
            }
        }()
        for index in plaintext.indices { plaintext[index] = 0 }
        return try records.get()
    }

    /// Running out of bytes is an integrity failure, said with the field that did not fit.
    static func makeReader(_ bytes: [UInt8], _ what: String, path: String) -> ByteReader<StoreError> {
        ByteReader(bytes, what: what, endianness: .big) {
            StoreError(.integrity, path: path, "integrity check failed: \($0)")
        }
    }

    static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}
