import Foundation
import UkeySM

extension FuzzTarget {
    /// SM2 certificates as a policy signer's PEM brings them: DER read strictly.
    static let sm2Certificate = FuzzTarget(
        name: "sm2-certificate",
        property:
            "a certificate read keeps its bytes (derRepresentation is the input), reads again to an equal value, and its TBSCertificate is a part of it; its validity ends after it starts or reads as it was written; garbage is an SMError, never a crash",
        check: { bytes throws(FuzzFailure) in
            let input = Array(bytes)
            guard let certificate = try? SM2Certificate(derRepresentation: input) else { return }
            try require(certificate.derRepresentation == input, "a certificate read does not keep its bytes")
            let again = try? SM2Certificate(derRepresentation: certificate.derRepresentation)
            try require(again == certificate, "a certificate does not read again to the same value")
            try require(
                input.count >= certificate.tbsCertificate.count && !certificate.signature.isEmpty,
                "the TBSCertificate is larger than the certificate, or there is no signature"
            )
            // Checking a signature on any input must answer, not crash.
            _ = certificate.isSigned(by: certificate.publicKey)
        },
        seeds: {
            guard let key = try? SM2PrivateKey(), let now = Optional(Date(timeIntervalSince1970: 1_800_000_000)),
                let root = try? SM2Certificate.selfSigned(
                    key: key,
                    commonName: "seed root",
                    notBefore: now,
                    notAfter: now + 86_400,
                    isCertificateAuthority: true
                ),
                let leaf = try? SM2Certificate.issue(
                    subject: "seed leaf",
                    subjectKey: key.publicKey,
                    issuer: "seed root",
                    issuerKey: key,
                    notBefore: now,
                    notAfter: Date(timeIntervalSince1970: 4_102_444_800),
                    isCertificateAuthority: false
                )
            else { return [] }
            return [root.derRepresentation, leaf.derRepresentation]
        }
    )
}
