import CLibCrypto
import Foundation

/// SM2 (GM/T 0003-2012) keys and signatures through the system's OpenSSL: every signature is
/// SM2 with SM3 over Z_A || message, where Z_A hashes the signer's distinguishing ID and public
/// key. The ID is always passed explicitly: OpenSSL 3.0 signs with an empty one when none is
/// given and OpenSSL 4 changed that default, so an implicit ID would not verify across versions.
public enum SM2 {
    /// The GM/T 0009 default distinguishing ID, "1234567812345678".
    public static let defaultID = Array("1234567812345678".utf8)
    /// An ID is at most this long (Z_A carries its bit length in two bytes).
    public static let maxIDLength = 8191

    static func check(id: [UInt8]) throws(SMError) {
        guard id.count <= maxIDLength else {
            throw SMError(.malformed, "an SM2 distinguishing ID is at most \(maxIDLength) bytes, got \(id.count)")
        }
    }

    /// The DER SubjectPublicKeyInfo of an SM2 key, up to the point: id-ecPublicKey, the SM2 curve
    /// (1.2.156.10197.1.301), a 66-byte BIT STRING holding 04 || X || Y.
    static let spkiPrefix: [UInt8] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08, 0x2A,
        0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D, 0x03, 0x42, 0x00, 0x04,
    ]

    /// Reads a key with one of OpenSSL's d2i functions, bounded, and keeps it only if it is SM2.
    static func decode(
        _ der: [UInt8],
        maxBytes: Int,
        what: String,
        _ d2i: (UnsafeMutablePointer<UnsafePointer<UInt8>?>, Int) -> OpaquePointer?
    ) throws(SMError) -> OpaquePointer {
        guard !der.isEmpty, der.count <= maxBytes else {
            throw SMError(.malformed, "an SM2 \(what) is 1-\(maxBytes) bytes of DER")
        }
        let key: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor = buffer.baseAddress
            return d2i(&cursor, buffer.count)
        }
        guard let key else { throw SMError(.malformed, "not a DER \(what)") }
        guard EVP_PKEY_is_a(key, "SM2") == 1 else {
            EVP_PKEY_free(key)
            throw SMError(.malformed, "the \(what) is not an SM2 key")
        }
        return key
    }

    static func pem(_ der: [UInt8], label: String) -> String {
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(base64)\n-----END \(label)-----\n"
    }

    static func der(fromPEM text: String, label: String) throws(SMError) -> [UInt8] {
        guard text.utf8.count <= 16_384,
            let begin = text.firstRange(of: "-----BEGIN \(label)-----"),
            let end = text[begin.upperBound...].firstRange(of: "-----END \(label)-----"),
            let data = Data(
                base64Encoded: String(text[begin.upperBound..<end.lowerBound]),
                options: .ignoreUnknownCharacters
            )
        else { throw SMError(.malformed, "not a PEM \(label)") }
        return Array(data)
    }
}

/// An SM2 private key. Its OpenSSL object is freed with it.
public final class SM2PrivateKey: @unchecked Sendable {
    // @unchecked: the EVP_PKEY is only read after init (OpenSSL's keys are safe to share for signing).
    let key: OpaquePointer

    /// A new key from the system's random source.
    public init() throws(SMError) {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "SM2", nil) else {
            throw SMError(.library, "OpenSSL has no SM2")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_generate(context, &key) == 1, let key else {
            throw SMError(.library, "OpenSSL could not make an SM2 key")
        }
        self.key = key
    }

    /// A PKCS#8 DER key (`openssl genpkey -algorithm SM2 -outform DER`).
    public init(derRepresentation der: [UInt8]) throws(SMError) {
        let loaded = try SM2.decode(der, maxBytes: 4096, what: "private key") { d2i_AutoPrivateKey(nil, $0, $1) }
        // A key file may carry a public point that is not its scalar's (OpenSSL takes it as given):
        // it would sign with one key and name another. EVP_PKEY_check proves they belong together
        // and the scalar is in range. (The fuzzer's first finding.)
        let context = EVP_PKEY_CTX_new(loaded, nil)
        let holds = context.map { EVP_PKEY_check($0) == 1 } ?? false
        EVP_PKEY_CTX_free(context)
        guard holds else {
            EVP_PKEY_free(loaded)
            ERR_clear_error()
            throw SMError(
                .malformed,
                "the private key does not hold together: its public point is not its scalar's, or the scalar is out of range"
            )
        }
        key = loaded
    }

    /// A PEM `PRIVATE KEY` (PKCS#8), as `openssl genpkey -algorithm SM2` writes it.
    public convenience init(pemRepresentation text: String) throws(SMError) {
        try self.init(derRepresentation: try SM2.der(fromPEM: text, label: "PRIVATE KEY"))
    }

    deinit { EVP_PKEY_free(key) }

    public var derRepresentation: [UInt8] {
        guard let info = EVP_PKEY2PKCS8(key) else { return [] }
        defer { PKCS8_PRIV_KEY_INFO_free(info) }
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_PKCS8_PRIV_KEY_INFO(info, &out)
        guard length > 0, let out else { return [] }
        defer {
            // The DER holds the secret scalar: cleared before it goes back to OpenSSL.
            OPENSSL_cleanse(out, Int(length))
            CRYPTO_free(out, #fileID, #line)
        }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }

    public var pemRepresentation: String { SM2.pem(derRepresentation, label: "PRIVATE KEY") }

    public var publicKey: SM2PublicKey {
        get throws(SMError) { try SM2PublicKey(derRepresentation: SM2PublicKey.spki(of: key)) }
    }

    /// Signs `message` (SM2 with SM3, Z_A over `id`): DER `SEQUENCE { r, s }`.
    public func signature(for message: [UInt8], id: [UInt8] = SM2.defaultID) throws(SMError) -> [UInt8] {
        try SM2.check(id: id)
        return try SM2Operation.run(key, id: id) { (context: OpaquePointer) throws(SMError) -> [UInt8] in
            guard EVP_DigestSignInit(context, nil, EVP_sm3(), nil, key) == 1 else {
                throw SMError(.library, "OpenSSL would not start an SM2 signature")
            }
            var length = 0
            guard
                message.withUnsafeBufferPointer({ EVP_DigestSign(context, nil, &length, $0.baseAddress, $0.count) })
                    == 1
            else {
                throw SMError(.library, "OpenSSL would not size an SM2 signature")
            }
            var signature = [UInt8](repeating: 0, count: length)
            guard
                message.withUnsafeBufferPointer({ m in
                    signature.withUnsafeMutableBufferPointer {
                        EVP_DigestSign(context, $0.baseAddress, &length, m.baseAddress, m.count)
                    }
                }) == 1
            else {
                throw SMError(.library, "OpenSSL could not make an SM2 signature")
            }
            return Array(signature.prefix(length))
        }
    }
}

/// An SM2 public key.
public final class SM2PublicKey: @unchecked Sendable, Equatable {
    let key: OpaquePointer

    /// A DER SubjectPublicKeyInfo on the SM2 curve.
    public init(derRepresentation der: [UInt8]) throws(SMError) {
        key = try SM2.decode(der, maxBytes: 1024, what: "public key") { d2i_PUBKEY(nil, $0, $1) }
    }

    public convenience init(pemRepresentation text: String) throws(SMError) {
        try self.init(derRepresentation: try SM2.der(fromPEM: text, label: "PUBLIC KEY"))
    }

    /// The point as X || Y, 32 bytes each (GM/T's raw form; SKF blobs hold it padded, see `SKFBlob`).
    public convenience init(rawRepresentation raw: [UInt8]) throws(SMError) {
        guard raw.count == 64 else {
            throw SMError(.malformed, "a raw SM2 public key is X || Y, 64 bytes, got \(raw.count)")
        }
        try self.init(derRepresentation: SM2.spkiPrefix + raw)
    }

    deinit { EVP_PKEY_free(key) }

    static func spki(of key: OpaquePointer) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_PUBKEY(key, &out)
        guard length > 0, let out else { return [] }
        defer { CRYPTO_free(out, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }

    public var derRepresentation: [UInt8] { Self.spki(of: key) }
    public var pemRepresentation: String { SM2.pem(derRepresentation, label: "PUBLIC KEY") }
    /// X || Y.
    public var rawRepresentation: [UInt8] { Array(derRepresentation.suffix(64)) }

    /// Whether `signature` (DER) is this key's SM2-with-SM3 signature of `message` under `id`.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8], id: [UInt8] = SM2.defaultID) -> Bool {
        guard (try? SM2.check(id: id)) != nil, !signature.isEmpty, signature.count <= 128 else { return false }
        let verified = try? SM2Operation.run(key, id: id) { (context: OpaquePointer) throws(SMError) -> Bool in
            guard EVP_DigestVerifyInit(context, nil, EVP_sm3(), nil, key) == 1 else { return false }
            return signature.withUnsafeBufferPointer { s in
                message.withUnsafeBufferPointer { m in
                    EVP_DigestVerify(context, s.baseAddress, s.count, m.baseAddress, m.count) == 1
                }
            }
        }
        ERR_clear_error()
        return verified == true
    }

    public static func == (lhs: SM2PublicKey, rhs: SM2PublicKey) -> Bool {
        lhs.derRepresentation == rhs.derRepresentation
    }
}

/// One signing or verification: a digest context whose key context carries the ID, both freed on
/// every path.
enum SM2Operation {
    static func run<T>(
        _ key: OpaquePointer,
        id: [UInt8],
        _ body: (OpaquePointer) throws(SMError) -> T
    ) throws(SMError) -> T {
        guard let keyContext = EVP_PKEY_CTX_new(key, nil) else { throw SMError(.library, "out of memory") }
        // Not freed by EVP_MD_CTX_free when set with EVP_MD_CTX_set_pkey_ctx: freed here, after it.
        defer { EVP_PKEY_CTX_free(keyContext) }
        guard let digest = EVP_MD_CTX_new() else { throw SMError(.library, "out of memory") }
        defer { EVP_MD_CTX_free(digest) }
        guard id.withUnsafeBytes({ EVP_PKEY_CTX_set1_id(keyContext, $0.baseAddress, Int32($0.count)) }) == 1 else {
            throw SMError(.library, "OpenSSL would not take the SM2 distinguishing ID")
        }
        EVP_MD_CTX_set_pkey_ctx(digest, keyContext)
        return try body(digest)
    }
}
