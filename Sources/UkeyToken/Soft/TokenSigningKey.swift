import Crypto
import UkeySM

/// One of the soft token's own signing keys (attestation, audit), as its algorithm has it.
/// Either signs the message itself: P-256 as ECDSA over its SHA-256, SM2 as SM2-with-SM3 with the
/// token's ID; both give DER signatures, which `VerificationKey` checks.
enum TokenSigningKey: Sendable {
    case p256(P256.Signing.PrivateKey)
    case sm2(SM2PrivateKey, id: [UInt8])

    func signature(for message: [UInt8]) throws(TokenError) -> [UInt8] {
        switch self {
        case .p256(let key):
            do {
                return Array(try key.signature(for: SHA256.hash(data: message)).derRepresentation)
            } catch {
                throw TokenError(.crypto, "signing failed: \(error)")
            }
        case .sm2(let key, let id):
            do {
                return try key.signature(for: message, id: id)
            } catch {
                throw TokenError(.crypto, "SM2 signing failed: \(error)")
            }
        }
    }

    /// The algorithm's name, as `VerificationKey.algorithm` gives it.
    var algorithm: String {
        switch self {
        case .p256: "ecdsa-p256-sha256"
        case .sm2: "sm2-sm3"
        }
    }

    /// The public key, PEM SubjectPublicKeyInfo.
    var publicKeyPEM: String {
        get throws(TokenError) {
            switch self {
            case .p256(let key): return key.publicKey.pemRepresentation
            case .sm2(let key, _):
                do {
                    return try key.publicKey.pemRepresentation
                } catch {
                    throw TokenError(.crypto, "the SM2 key has no public key: \(error)")
                }
            }
        }
    }
}
