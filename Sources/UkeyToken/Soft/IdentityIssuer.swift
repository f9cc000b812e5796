import Foundation
import UkeySM
import X509

/// The key an identity certificate certifies: an X.509 public key (a P-256 key of the token's, of
/// a user's card, of a CSR) or an SM2 public key (a user's key in an SM2 token).
enum IdentitySubjectKey: Sendable {
    case x509(Certificate.PublicKey)
    case sm2(SM2PublicKey)
}

/// The user CA's key and certificate with the time and validity to issue at: enough to sign an
/// identity certificate off the token's actor. A P-256 token's user CA issues X.509; an SM2
/// token's issues `SM2Certificate`s with the token's ID, and certifies SM2 keys only.
enum IdentityIssuer: Sendable {
    case x509(key: Certificate.PrivateKey, certificate: Certificate, now: Date, validity: TimeInterval)
    case sm2(key: SM2PrivateKey, certificate: SM2Certificate, id: [UInt8], now: Date, validity: TimeInterval)

    func issueIdentity(_ user: String, subjectKey: IdentitySubjectKey) async throws(TokenError) -> TokenCertificate {
        switch (self, subjectKey) {
        case (.x509(let key, let certificate, let now, let validity), .x509(let subject)):
            return .x509(
                try await IdentityCA.issue(
                    commonName: user,
                    subjectKey: subject,
                    purpose: .userIdentity,
                    caKey: key,
                    caCertificate: certificate,
                    now: now,
                    validity: validity
                )
            )
        case (.sm2(let key, let certificate, let id, let now, let validity), .sm2(let subject)):
            return .sm2(
                try SM2IdentityCA.issue(
                    commonName: user,
                    subjectKey: subject,
                    purpose: .userIdentity,
                    caKey: key,
                    caCertificate: certificate,
                    now: now,
                    id: id,
                    validity: validity
                )
            )
        case (.sm2, .x509):
            throw TokenError(
                .invalidArgument,
                "this token's user CA is SM2 and certifies SM2 keys it makes itself; it cannot certify a P-256 key (a smart card's or a CSR's): use a P-256 token for users with cards"
            )
        case (.x509, .sm2):
            throw TokenError(.invalidArgument, "this token's user CA is P-256 and cannot certify an SM2 key")
        }
    }
}
