import Crypto
import UkeySM
import X509

/// One of the soft token's signing keys (attestation, audit, a user's), as its algorithm has it.
/// Either signs the message itself: P-256 as ECDSA over its SHA-256, SM2 as SM2-with-SM3 with the
/// token's ID; both give DER signatures, which `VerificationKey` checks.
enum TokenSigningKey: Sendable {
    case p256(P256.Signing.PrivateKey)
    case sm2(SM2PrivateKey, id: [UInt8])

    /// A new key in `algorithm`, and the bytes the sealed store keeps of it: P-256's raw scalar,
    /// SM2's PKCS#8.
    static func generate(_ algorithm: TokenAlgorithm) throws(TokenError) -> (key: TokenSigningKey, stored: [UInt8]) {
        switch algorithm {
        case .p256:
            let key = P256.Signing.PrivateKey()
            return (.p256(key), Array(key.rawRepresentation))
        case .sm2(let id):
            do {
                let key = try SM2PrivateKey()
                return (.sm2(key, id: id), key.derRepresentation)
            } catch {
                throw TokenError(.crypto, "cannot make an SM2 key: \(error)")
            }
        }
    }

    /// A key as the sealed store keeps it, read in the token's algorithm; nil if malformed.
    init?(stored: [UInt8], algorithm: TokenAlgorithm) {
        switch algorithm {
        case .p256:
            guard let key = try? P256.Signing.PrivateKey(rawRepresentation: stored) else { return nil }
            self = .p256(key)
        case .sm2(let id):
            guard let key = try? SM2PrivateKey(derRepresentation: stored) else { return nil }
            self = .sm2(key, id: id)
        }
    }

    /// The public key, as an identity certificate names it.
    var subjectKey: IdentitySubjectKey {
        get throws(TokenError) {
            switch self {
            case .p256(let key): return .x509(Certificate.PublicKey(key.publicKey))
            case .sm2(let key, _):
                do {
                    return .sm2(try key.publicKey)
                } catch {
                    throw TokenError(.crypto, "the SM2 key has no public key: \(error)")
                }
            }
        }
    }

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
