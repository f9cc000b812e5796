import Crypto
import Foundation
import SwiftASN1
import X509

/// The token's certificate authority: a self-signed root (RFC 5280) that issues user identity
/// certificates (clientAuth), certificates for the token's own keys, and certificates for CSRs of
/// users whose keys live on a smart card. Pure functions: keys, names and the time come in.
public enum IdentityCA {
    public static let defaultRootValidity: TimeInterval = 20 * 365 * 86_400
    public static let defaultUserValidity: TimeInterval = 365 * 86_400
    /// Certificates start a little in the past, so a verifier whose clock lags still accepts them.
    static let backdating: TimeInterval = 300

    /// A self-signed root CA certificate for `key`.
    public static func makeRoot(
        key: P256.Signing.PrivateKey,
        commonName: String,
        now: Date,
        validity: TimeInterval = defaultRootValidity
    ) throws(TokenError) -> Certificate {
        try makeRoot(key: Certificate.PrivateKey(key), commonName: commonName, now: now, validity: validity)
    }

    /// A self-signed root CA certificate for `key`, which may live outside the process (a TPM's).
    public static func makeRoot(
        key: Certificate.PrivateKey,
        commonName: String,
        now: Date,
        validity: TimeInterval = defaultRootValidity
    ) throws(TokenError) -> Certificate {
        do {
            let name = try DistinguishedName {
                OrganizationName("ukey")
                CommonName(commonName)
            }
            let publicKey = key.publicKey
            return try Certificate(
                version: .v3,
                serialNumber: randomSerial(),
                publicKey: publicKey,
                notValidBefore: now - backdating,
                notValidAfter: now + validity,
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                },
                issuerPrivateKey: key
            )
        } catch let error as TokenError {
            throw error
        } catch {
            throw TokenError(.crypto, "cannot create the root CA certificate: \(error)")
        }
    }

    /// What a leaf certificate is for.
    public enum LeafUsage: Sendable {
        /// A person's identity: digitalSignature + clientAuth.
        case userIdentity
        /// One of the token's own signing keys (attestation, audit): digitalSignature only.
        case tokenKey
    }

    /// A leaf certificate for `subjectKey`, issued by the root.
    public static func issue(
        commonName: String,
        subjectKey: Certificate.PublicKey,
        usage: LeafUsage,
        caKey: Certificate.PrivateKey,
        caCertificate: Certificate,
        now: Date,
        validity: TimeInterval = defaultUserValidity
    ) throws(TokenError) -> Certificate {
        do {
            let subject = try DistinguishedName {
                OrganizationName("ukey")
                CommonName(commonName)
            }
            guard caKey.publicKey == caCertificate.publicKey else {
                throw TokenError(.crypto, "the root CA key is not the one the root certificate names (the state directory belongs to another TPM?)")
            }
            let caKeyID = try caCertificate.extensions.subjectKeyIdentifier?.keyIdentifier
            return try Certificate(
                version: .v3,
                serialNumber: randomSerial(),
                publicKey: subjectKey,
                notValidBefore: now - backdating,
                notValidAfter: min(now + validity, caCertificate.notValidAfter),
                issuer: caCertificate.subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    if usage == .userIdentity {
                        try ExtendedKeyUsage([.clientAuth])
                    }
                    SubjectKeyIdentifier(hash: subjectKey)
                    AuthorityKeyIdentifier(keyIdentifier: caKeyID)
                },
                issuerPrivateKey: caKey
            )
        } catch let error as TokenError {
            throw error
        } catch {
            throw TokenError(.crypto, "cannot issue a certificate for '\(commonName)': \(error)")
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
            throw TokenError(.invalidCSR, "the CSR's signature does not verify with its own key (proof of possession failed)")
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

    /// PEM text of a certificate.
    public static func pem(_ certificate: Certificate) throws(TokenError) -> String {
        do {
            return try certificate.serializeAsPEM().pemString
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
