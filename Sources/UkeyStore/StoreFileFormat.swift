import Crypto

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
enum StoreFileFormat {
    static let magic = Array("UKEYSTR1".utf8)

    struct Header {
        let protectorName: String
        let wrappedKey: [UInt8]
        let generation: UInt64
        /// Offset of the body; the bytes before it are the body's associated data.
        let bodyOffset: Int
    }

    static func seal(
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

    static func parseHeader(_ bytes: [UInt8], path: String) throws(StoreError) -> Header {
        var cursor = Cursor(bytes: bytes, path: path)
        guard try cursor.take(8) == magic else {
            throw StoreError(.integrity, path: path, "integrity check failed: not a ukey sealed store (bad magic)")
        }
        let nameLength = Int(try cursor.u8())
        guard let name = String(validating: try cursor.take(nameLength), as: UTF8.self) else {
            throw StoreError(.integrity, path: path, "integrity check failed: the protector name is not text")
        }
        let keyLength = Int(try cursor.u16())
        let wrapped = try cursor.take(keyLength)
        let generation = try cursor.u64()
        guard cursor.remaining >= 12 + 16 else {
            throw StoreError(.integrity, path: path, "integrity check failed: the sealed body is truncated")
        }
        return Header(protectorName: name, wrappedKey: wrapped, generation: generation, bodyOffset: cursor.offset)
    }

    static func openBody(_ bytes: [UInt8], header: Header, key: SymmetricKey, path: String) throws(StoreError) -> [String: [UInt8]] {
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
        defer { for index in plaintext.indices { plaintext[index] = 0 } }
        // Authenticated, so malformed content means a bug in a writer, not an attacker; still checked.
        var cursor = Cursor(bytes: plaintext, path: path)
        let count = try cursor.u32()
        var records: [String: [UInt8]] = [:]
        for _ in 0..<count {
            let nameLength = Int(try cursor.u16())
            guard let name = String(validating: try cursor.take(nameLength), as: UTF8.self) else {
                throw StoreError(.integrity, path: path, "integrity check failed: a record name is not text")
            }
            let valueLength = Int(try cursor.u32())
            records[name] = try cursor.take(valueLength)
        }
        guard cursor.remaining == 0 else {
            throw StoreError(.integrity, path: path, "integrity check failed: trailing bytes after the records")
        }
        return records
    }

    static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    /// A bounds-checked big-endian reader; running out of bytes is an integrity failure.
    struct Cursor {
        let bytes: [UInt8]
        let path: String
        var offset = 0
        var remaining: Int { bytes.count - offset }

        init(bytes: [UInt8], path: String) {
            self.bytes = bytes
            self.path = path
        }

        mutating func take(_ count: Int) throws(StoreError) -> [UInt8] {
            guard count >= 0, count <= remaining else {
                throw StoreError(.integrity, path: path, "integrity check failed: the file is truncated at byte \(offset)")
            }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }

        mutating func u8() throws(StoreError) -> UInt8 { try take(1)[0] }
        mutating func u16() throws(StoreError) -> UInt16 { try take(2).reduce(0) { $0 << 8 | UInt16($1) } }
        mutating func u32() throws(StoreError) -> UInt32 { try take(4).reduce(0) { $0 << 8 | UInt32($1) } }
        mutating func u64() throws(StoreError) -> UInt64 { try take(8).reduce(0) { $0 << 8 | UInt64($1) } }
    }
}
