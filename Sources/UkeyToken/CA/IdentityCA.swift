import Crypto
import Foundation
import SwiftASN1
import X509

/// The token's certificate authority (RFC 5280), in two levels:
///
///     root CA (self-signed, path length 1)
///     +-- token-keys CA (policy token-keys) -> attestation key (EKU attestation), audit key (EKU audit)
///     +-- user CA (policy users)            -> users' identity keys (EKU clientAuth), soft or CSR
///
/// A sub-CA issues only its own kind, and every certificate names its purpose (`KeyPurpose`), so
/// no user's certificate can pass for an attestation or audit key's. Pure functions: keys, names
/// and the time come in.
public enum IdentityCA {
    public static let defaultRootValidity: TimeInterval = 20 * 365 * 86_400
    public static let defaultUserValidity: TimeInterval = 365 * 86_400
    /// Certificates start a little in the past, so a verifier whose clock lags still accepts them.
    static let backdating: TimeInterval = 300

    /// A self-signed root CA certificate for an in-process `key` (a policy signer's, a test's).
    public static func makeRoot(
        key: P256.Signing.PrivateKey,
        commonName: String,
        now: Date,
        validity: TimeInterval = defaultRootValidity
    ) throws(TokenError) -> Certificate {
        try rootDraft(
            publicKey: Certificate.PublicKey(key.publicKey),
            commonName: commonName,
            now: now,
            validity: validity
        )
        .signed(by: Certificate.PrivateKey(key))
    }

    /// A self-signed root CA certificate for `key`, which may live outside the process (a TPM's,
    /// which signs without holding a thread while the TPM works).
    public static func makeRoot(
        key: Certificate.PrivateKey,
        commonName: String,
        now: Date,
        validity: TimeInterval = defaultRootValidity
    ) async throws(TokenError) -> Certificate {
        try await rootDraft(publicKey: key.publicKey, commonName: commonName, now: now, validity: validity).signed(
            byAsync: key
        )
    }

    /// A self-signed leaf certificate for a key held elsewhere (a card's, at enrolment): the
    /// signature proves the card holds the key; the root CA certifies it later.
    public static func selfSigned(
        key: Certificate.PrivateKey,
        commonName: String,
        now: Date,
        validity: TimeInterval = defaultRootValidity
    ) async throws(TokenError) -> Certificate {
        let draft: CertificateDraft
        do {
            let name = try DistinguishedName {
                OrganizationName("ukey")
                CommonName(commonName)
            }
            draft = CertificateDraft(
                commonName: commonName,
                publicKey: key.publicKey,
                notValidBefore: now - backdating,
                notValidAfter: now + validity,
                issuer: name,
                subject: name,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true, keyAgreement: true))
                    SubjectKeyIdentifier(hash: key.publicKey)
                }
            )
        } catch {
            throw TokenError(.crypto, "cannot create a self-signed certificate for \(commonName): \(error)")
        }
        return try await draft.signed(byAsync: key)
    }

    private static func rootDraft(
        publicKey: Certificate.PublicKey,
        commonName: String,
        now: Date,
        validity: TimeInterval
    ) throws(TokenError) -> CertificateDraft {
        do {
            let name = try DistinguishedName {
                OrganizationName("ukey")
                CommonName(commonName)
            }
            return CertificateDraft(
                commonName: commonName,
                publicKey: publicKey,
                notValidBefore: now - backdating,
                notValidAfter: now + validity,
                issuer: name,
                subject: name,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 1))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                }
            )
        } catch {
            throw TokenError(.crypto, "cannot create the root CA certificate: \(error)")
        }
    }

    /// A sub-CA certificate for `subjectKey`, issued by the root, for one certificate policy.
    public static func makeSubordinate(
        _ policy: CertificatePolicy,
        commonName: String,
        subjectKey: Certificate.PublicKey,
        rootKey: Certificate.PrivateKey,
        rootCertificate: Certificate,
        now: Date
    ) async throws(TokenError) -> Certificate {
        try await certify(
            commonName: commonName,
            subjectKey: subjectKey,
            issuerKey: rootKey,
            issuer: rootCertificate,
            now: now,
            validity: defaultRootValidity
        ) {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            CertificatePoliciesExtension.extensionValue([policy])
        }
    }

    /// A leaf certificate for `subjectKey` with one purpose, issued by that purpose's sub-CA.
    public static func issue(
        commonName: String,
        subjectKey: Certificate.PublicKey,
        purpose: KeyPurpose,
        caKey: Certificate.PrivateKey,
        caCertificate: Certificate,
        now: Date,
        validity: TimeInterval = defaultUserValidity,
        tpm2QuotesOnly: Bool = false
    ) async throws(TokenError) -> Certificate {
        guard CertificatePoliciesExtension.certificate(caCertificate, states: purpose.policy) else {
            throw TokenError(
                .crypto,
                "the CA '\(caCertificate.subject)' does not issue \(purpose.rawValue) certificates"
            )
        }
        return try await certify(
            commonName: commonName,
            subjectKey: subjectKey,
            issuerKey: caKey,
            issuer: caCertificate,
            now: now,
            validity: validity
        ) {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            purpose.extendedKeyUsageExtension(also: tpm2QuotesOnly ? [KeyPurpose.tpm2Quotes] : [])
            CertificatePoliciesExtension.extensionValue([purpose.policy])
        }
    }

    /// A certificate signed by `issuer`'s key, with the extensions `body` gives after the key
    /// identifiers' own.
    static func certify(
        commonName: String,
        subjectKey: Certificate.PublicKey,
        issuerKey: Certificate.PrivateKey,
        issuer: Certificate,
        now: Date,
        validity: TimeInterval,
        @ExtensionsBuilder _ body: () throws -> Result<Certificate.Extensions, any Error>
    ) async throws(TokenError) -> Certificate {
        guard issuerKey.publicKey == issuer.publicKey else {
            throw TokenError(
                .crypto,
                "the CA key is not the one its certificate names (the state directory belongs to another TPM?)"
            )
        }
        let draft: CertificateDraft
        do {
            let subject = try DistinguishedName {
                OrganizationName("ukey")
                CommonName(commonName)
            }
            let issuerKeyID = try issuer.extensions.subjectKeyIdentifier?.keyIdentifier
            var extensions = try Certificate.Extensions(builder: body)
            try extensions.append(SubjectKeyIdentifier(hash: subjectKey).makeCertificateExtension())
            try extensions.append(AuthorityKeyIdentifier(keyIdentifier: issuerKeyID).makeCertificateExtension())
            draft = CertificateDraft(
                commonName: commonName,
                publicKey: subjectKey,
                notValidBefore: now - backdating,
                notValidAfter: min(now + validity, issuer.notValidAfter),
                issuer: issuer.subject,
                subject: subject,
                extensions: extensions
            )
        } catch {
            throw TokenError(.crypto, "cannot issue a certificate for '\(commonName)': \(error)")
        }
        return try await draft.signed(byAsync: issuerKey)
    }

    /// What a certificate will say, before a key signs it.
    private struct CertificateDraft {
        let commonName: String
        let publicKey: Certificate.PublicKey
        let notValidBefore: Date
        let notValidAfter: Date
        let issuer: DistinguishedName
        let subject: DistinguishedName
        let extensions: Certificate.Extensions

        func signed(by key: Certificate.PrivateKey) throws(TokenError) -> Certificate {
            do {
                return try Certificate(
                    version: .v3,
                    serialNumber: randomSerial(),
                    publicKey: publicKey,
                    notValidBefore: notValidBefore,
                    notValidAfter: notValidAfter,
                    issuer: issuer,
                    subject: subject,
                    signatureAlgorithm: .ecdsaWithSHA256,
                    extensions: extensions,
                    issuerPrivateKey: key
                )
            } catch {
                throw Self.failure(error, commonName)
            }
        }

        /// Signed through the key's asynchronous path: a TPM's key is awaited on the TPM's own
        /// executor, not waited for on a thread of Swift's pool.
        func signed(byAsync key: Certificate.PrivateKey) async throws(TokenError) -> Certificate {
            do {
                return try await Certificate(
                    version: .v3,
                    serialNumber: randomSerial(),
                    publicKey: publicKey,
                    notValidBefore: notValidBefore,
                    notValidAfter: notValidAfter,
                    issuer: issuer,
                    subject: subject,
                    signatureAlgorithm: .ecdsaWithSHA256,
                    extensions: extensions,
                    issuerAsyncPrivateKey: key
                )
            } catch {
                throw Self.failure(error, commonName)
            }
        }

        private static func failure(_ error: any Error, _ commonName: String) -> TokenError {
            error as? TokenError ?? TokenError(.crypto, "cannot issue a certificate for '\(commonName)': \(error)")
        }
    }

    /// Parses a PEM or DER CSR, checks its self-signature, and returns its public key. The subject
    /// the CA writes is the user's name, never the CSR's own subject.
    public static func publicKey(fromCSR text: String) throws(TokenError) -> Certificate.PublicKey {
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(pemEncoded: text)
        } catch {
            throw TokenError(.invalidCSR, "the CSR is not a PEM 'CERTIFICATE REQUEST': \(error)")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw TokenError(
                .invalidCSR,
                "the CSR's signature does not verify with its own key (proof of possession failed)"
            )
        }
        return csr.publicKey
    }

    /// A positive 20-byte random serial (RFC 5280 section 4.1.2.2 allows up to 20 octets): unique
    /// without a counter to keep in step.
    static func randomSerial() -> Certificate.SerialNumber {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<20).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[0] = bytes[0] & 0x7F | 0x01
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// PEM text of a certificate, ending in a newline as openssl writes it, so that certificates
    /// concatenate into a bundle (a key's certificate, then its issuer's).
    public static func pem(_ certificate: Certificate) throws(TokenError) -> String {
        do {
            return try certificate.serializeAsPEM().pemString + "\n"
        } catch {
            throw TokenError(.crypto, "cannot encode a certificate: \(error)")
        }
    }

    public static func der(_ certificate: Certificate) throws(TokenError) -> [UInt8] {
        do {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            return serializer.serializedBytes
        } catch {
            throw TokenError(.crypto, "cannot encode a certificate: \(error)")
        }
    }

    public static func certificate(der bytes: [UInt8]) throws(TokenError) -> Certificate {
        do {
            return try Certificate(derEncoded: bytes)
        } catch {
            throw TokenError(.crypto, "a stored certificate does not parse: \(error)")
        }
    }

    /// Why `leaf` is not a certificate for `purpose` under `root`, or nil when it is: it names the
    /// purpose (extended key usage and certificate policy), and one of `intermediates` is the
    /// root's sub-CA for that policy and issued it. The same checks as `openssl verify -CAfile
    /// ROOT -untrusted CHAIN -policy OID -explicit_policy -x509_strict`, plus the key usage.
    public static func problem(
        with leaf: Certificate,
        as purpose: KeyPurpose,
        intermediates: [Certificate],
        root: Certificate,
        at now: Date
    ) -> String? {
        let policy = purpose.policy
        guard purpose.isStated(by: leaf) else {
            return
                "certificate '\(leaf.subject)' is not a \(purpose.rawValue) key's: it lacks the extended key usage \(purpose.extendedKeyUsageOID)"
        }
        guard CertificatePoliciesExtension.certificate(leaf, states: policy) else {
            return "certificate '\(leaf.subject)' is not under the \(policy.rawValue) policy \(policy.oid)"
        }
        guard let ca = intermediates.first(where: { $0.subject == leaf.issuer }) else {
            return
                "certificate '\(leaf.subject)' needs its issuer '\(leaf.issuer)' (the token's \(purpose.policy.caName)) in the chain"
        }
        guard CertificatePoliciesExtension.certificate(ca, states: policy),
            (try? ca.extensions.basicConstraints) == .isCertificateAuthority(maxPathLength: 0)
        else {
            return
                "'\(ca.subject)' is not the token's \(purpose.policy.caName): it may not issue \(purpose.rawValue) certificates"
        }
        if let problem = verify(leaf, issuedBy: ca, at: now) { return problem }
        if let problem = verify(ca, issuedBy: root, at: now) { return "sub-CA \(problem)" }
        return nil
    }

    /// Whether `certificate` was issued by `issuer` (signature and names) and is valid at `now`.
    public static func verify(_ certificate: Certificate, issuedBy issuer: Certificate, at now: Date) -> String? {
        guard certificate.issuer == issuer.subject else { return "certificate issuer does not name the CA" }
        guard issuer.publicKey.isValidSignature(certificate.signature, for: certificate) else {
            return "certificate signature does not verify with the CA's key"
        }
        guard certificate.notValidBefore <= now, now <= certificate.notValidAfter else {
            return "certificate is not valid at \(now)"
        }
        return nil
    }
}
