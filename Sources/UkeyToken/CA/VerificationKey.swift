import Crypto
import UkeySM

/// A public key that checks what a token signs, whichever algorithm the token uses: P-256
/// (ECDSA over SHA-256 of the message, DER signatures) or SM2 (SM2-with-SM3 over the message
/// with the distinguishing ID, DER signatures). A verifier takes it from a certificate
/// (`CertificateBundle.verificationKey`) and never chooses the algorithm itself.
public enum VerificationKey: Sendable {
    case p256(P256.Signing.PublicKey)
    case sm2(SM2PublicKey, id: [UInt8])

    /// The algorithm's name as ukey's replies and `ukeyctl` print it.
    public var algorithm: String {
        switch self {
        case .p256: "ecdsa-p256-sha256"
        case .sm2: "sm2-sm3"
        }
    }

    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        switch self {
        case .p256(let key):
            guard let ecdsa = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(ecdsa, for: SHA256.hash(data: message))
        case .sm2(let key, let id):
            return key.isValidSignature(signature, for: message, id: id)
        }
    }

    /// The key alone, PEM SubjectPublicKeyInfo (what `openssl dgst -verify` takes).
    public var pemRepresentation: String {
        switch self {
        case .p256(let key): key.pemRepresentation
        case .sm2(let key, _): key.pemRepresentation
        }
    }
}
