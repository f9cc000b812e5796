import Crypto
import UkeyCodec
import UkeySM
import X509

/// The key a site signs its policies with, as enrolled at `Initialize`: an ECDSA P-256
/// certificate (signatures ECDSA over SHA-256, as `openssl dgst -sha256 -sign` makes them), or an
/// SM2 certificate (signatures SM2-with-SM3 with the distinguishing ID, as `openssl dgst -sm3
/// -sign KEY -sigopt distid:1234567812345678` makes them). The token keeps its DER.
public enum PolicySigner: Sendable {
    case p256(Certificate)
    case sm2(SM2Certificate)

    /// A certificate in DER: SM2 when its signature algorithm is SM2-with-SM3, else X.509 with
    /// an ECDSA P-256 key.
    public init(derEncoded der: [UInt8]) throws(TokenError) {
        if let sm2 = try? SM2Certificate(derRepresentation: der) {
            self = .sm2(sm2)
            return
        }
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: der)
        } catch {
            throw TokenError(
                .invalidArgument,
                "the policy signer is neither an X.509 certificate nor an SM2 one: \(error)"
            )
        }
        guard P256.Signing.PublicKey(certificate.publicKey) != nil else {
            throw TokenError(.invalidArgument, "the policy signer's key must be ECDSA P-256 or SM2")
        }
        self = .p256(certificate)
    }

    /// The first certificate of a PEM text.
    public init(pemEncoded text: String) throws(TokenError) {
        if let sm2 = try? SM2Certificate(pemRepresentation: text) {
            self = .sm2(sm2)
            return
        }
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: PEMText.firstBlock(of: text))
        } catch {
            throw TokenError(.invalidArgument, "the policy signer is not a PEM X.509 certificate: \(error)")
        }
        try self.init(derEncoded: (try? IdentityCA.der(certificate)) ?? [])
    }

    public var derRepresentation: [UInt8] {
        switch self {
        case .p256(let certificate): (try? IdentityCA.der(certificate)) ?? []
        case .sm2(let certificate): certificate.derRepresentation
        }
    }

    public var pemRepresentation: String {
        switch self {
        case .p256(let certificate): (try? IdentityCA.pem(certificate)) ?? ""
        case .sm2(let certificate): certificate.pemRepresentation
        }
    }

    /// "p256" or "sm2".
    public var algorithm: String {
        switch self {
        case .p256: "p256"
        case .sm2: "sm2"
        }
    }

    /// Whether `signature` (DER) is this signer's over exactly `text`.
    public func isValidSignature(_ signature: [UInt8], for text: [UInt8]) -> Bool {
        switch self {
        case .p256(let certificate):
            guard let key = P256.Signing.PublicKey(certificate.publicKey),
                let ecdsa = try? P256.Signing.ECDSASignature(derRepresentation: signature)
            else { return false }
            return key.isValidSignature(ecdsa, for: SHA256.hash(data: text))
        case .sm2(let certificate):
            return certificate.publicKey.isValidSignature(signature, for: text)
        }
    }
}
