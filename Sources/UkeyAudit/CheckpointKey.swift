import Crypto

/// The audit key as the verifier uses it: the algorithm its checkpoints must state, and the
/// check of a signature over a signed message. Built from the audit key's certificate (a P-256
/// key here, an SM2 key with its ID by `UkeyToken.VerificationKey`), never from the log.
public struct CheckpointKey: Sendable {
    public static let p256Algorithm = "ecdsa-p256-sha256"

    public let algorithm: String
    public let isValid: @Sendable (_ signature: [UInt8], _ message: [UInt8]) -> Bool

    public init(algorithm: String, isValid: @escaping @Sendable (_ signature: [UInt8], _ message: [UInt8]) -> Bool) {
        self.algorithm = algorithm
        self.isValid = isValid
    }

    /// A P-256 audit key: ECDSA over the message's SHA-256.
    public init(p256 key: P256.Signing.PublicKey) {
        self.init(algorithm: Self.p256Algorithm) { signature, message in
            guard let ecdsa = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(ecdsa, for: SHA256.hash(data: message))
        }
    }
}
