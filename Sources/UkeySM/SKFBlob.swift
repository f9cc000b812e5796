/// The key and signature structures of SKF (GM/T 0016, the smart-token API of GM/T Ukeys), so
/// that a site's SKF container maps onto ukey's SM2 forms:
/// - `ECCPUBLICKEYBLOB`: `ULONG BitLen` (little-endian, 256 for SM2), then X and Y, each in a
///   64-byte field (ECC_MAX_XCOORDINATE_BITS_LEN / 8) with the 32-byte value right-aligned;
/// - `ECCSIGNATUREBLOB`: r and s, each in a 64-byte field, right-aligned.
/// Both are read from untrusted bytes: exact sizes, zero padding and BitLen 256 or refused.
public enum SKFBlob {
    public static let publicKeySize = 4 + 64 + 64
    public static let signatureSize = 64 + 64

    /// An SKF public key blob as an SM2 public key.
    public static func publicKey(_ blob: [UInt8]) throws(SMError) -> SM2PublicKey {
        guard blob.count == publicKeySize else {
            throw SMError(.malformed, "an ECCPUBLICKEYBLOB is \(publicKeySize) bytes, got \(blob.count)")
        }
        let bits = UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24
        guard bits == 256 else { throw SMError(.malformed, "an SM2 ECCPUBLICKEYBLOB has BitLen 256, not \(bits)") }
        let x = try unpad(Array(blob[4..<68]), "X")
        let y = try unpad(Array(blob[68..<132]), "Y")
        return try SM2PublicKey(rawRepresentation: x + y)
    }

    /// An SM2 public key as an SKF public key blob.
    public static func blob(of key: SM2PublicKey) -> [UInt8] {
        let raw = key.rawRepresentation
        return [0x00, 0x01, 0x00, 0x00] + pad(Array(raw[0..<32])) + pad(Array(raw[32..<64]))
    }

    /// An SKF signature blob as DER.
    public static func signatureDER(_ blob: [UInt8]) throws(SMError) -> [UInt8] {
        guard blob.count == signatureSize else {
            throw SMError(.malformed, "an ECCSIGNATUREBLOB is \(signatureSize) bytes, got \(blob.count)")
        }
        return try SM2Signature.der(fromRaw: try unpad(Array(blob[0..<64]), "r") + unpad(Array(blob[64..<128]), "s"))
    }

    /// A DER signature as an SKF signature blob.
    public static func signatureBlob(fromDER der: [UInt8]) throws(SMError) -> [UInt8] {
        let raw = try SM2Signature.raw(fromDER: der)
        return pad(Array(raw[0..<32])) + pad(Array(raw[32..<64]))
    }

    static func pad(_ value: [UInt8]) -> [UInt8] { [UInt8](repeating: 0, count: 32) + value }

    static func unpad(_ field: [UInt8], _ name: String) throws(SMError) -> [UInt8] {
        guard field.prefix(32).allSatisfy({ $0 == 0 }) else {
            throw SMError(.malformed, "the blob's \(name) is wider than 256 bits")
        }
        return Array(field.suffix(32))
    }
}
