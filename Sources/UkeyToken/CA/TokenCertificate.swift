import Crypto
import UkeySM
import X509

/// A certificate the token hands out: X.509 as swift-certificates reads it (the token's own
/// P-256 keys, a TPM's or a card's), or an SM2 certificate (`UkeySM.SM2Certificate`), which
/// swift-certificates cannot read. Every caller that shows, stores or checks a token certificate
/// takes this, so a token whose keys are SM2 fits behind the same API.
public enum TokenCertificate: Sendable, Equatable {
    case x509(Certificate)
    case sm2(SM2Certificate)

    public var derRepresentation: [UInt8] {
        get throws(TokenError) {
            switch self {
            case .x509(let certificate): try IdentityCA.der(certificate)
            case .sm2(let certificate): certificate.derRepresentation
            }
        }
    }

    public var pemRepresentation: String {
        get throws(TokenError) {
            switch self {
            case .x509(let certificate): try IdentityCA.pem(certificate)
            case .sm2(let certificate): certificate.pemRepresentation
            }
        }
    }

    /// The X.509 certificate, when this is one.
    public var x509: Certificate? {
        if case .x509(let certificate) = self { return certificate }
        return nil
    }

    /// The key, when it is ECDSA P-256.
    public var p256PublicKey: P256.Signing.PublicKey? {
        x509.flatMap { P256.Signing.PublicKey($0.publicKey) }
    }

    /// The key that checks what this certificate's holder signs: P-256, or SM2 with `sm2ID` (the
    /// token's); nil for a key of another kind.
    public func verificationKey(sm2ID: [UInt8]) -> VerificationKey? {
        switch self {
        case .x509: p256PublicKey.map { .p256($0) }
        case .sm2(let certificate): .sm2(certificate.publicKey, id: sm2ID)
        }
    }

    /// The serial number's bytes.
    public var serialNumberBytes: [UInt8] {
        switch self {
        case .x509(let certificate): Array(certificate.serialNumber.bytes)
        case .sm2(let certificate): certificate.serialNumber
        }
    }
}

extension IdentityCA {
    /// PEM of either kind of token certificate.
    public static func pem(_ certificate: TokenCertificate) throws(TokenError) -> String {
        try certificate.pemRepresentation
    }
}
