import Crypto
import Foundation
import SwiftASN1
import UkeySM
import X509

/// A key's certificate followed by the certificates that issued it, as PEM text: the form in
/// which ukey hands out and reads the certificates of its attestation and audit keys.
public enum CertificateBundle {
    /// At most this many certificates in a bundle: a leaf, its sub-CA and room for a root.
    static let maxCertificates = 4

    /// The certificates of a PEM bundle, in order.
    public static func parse(_ pem: String, what: String) throws(TokenError) -> [Certificate] {
        var certificates: [Certificate] = []
        for der in try documents(pem, what: what) {
            do {
                certificates.append(try Certificate(derEncoded: der))
            } catch {
                throw TokenError(.invalidArgument, "the \(what) is not an X.509 certificate: \(error)")
            }
        }
        return certificates
    }

    /// The DER of each CERTIFICATE block of a PEM bundle, at most `maxCertificates`.
    static func documents(_ pem: String, what: String) throws(TokenError) -> [[UInt8]] {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw TokenError(.invalidArgument, "the \(what) is not PEM: \(error)")
        }
        guard !documents.isEmpty else { throw TokenError(.invalidArgument, "the \(what) holds no certificate") }
        guard documents.count <= maxCertificates else {
            throw TokenError(
                .invalidArgument,
                "the \(what) holds \(documents.count) PEM blocks; at most \(maxCertificates) are read"
            )
        }
        var ders: [[UInt8]] = []
        for document in documents {
            guard document.discriminator == "CERTIFICATE" else {
                throw TokenError(.invalidArgument, "the \(what) holds a '\(document.discriminator)', not a CERTIFICATE")
            }
            ders.append(document.derBytes)
        }
        return ders
    }

    /// The P-256 key of the bundle's first certificate, once that certificate is shown to be a key
    /// for `purpose`: by its own extensions always, and by its chain to `rootCAPEM` when given.
    public static func key(
        _ bundlePEM: String,
        for purpose: KeyPurpose,
        rootCAPEM: String?,
        now: Date = Date()
    ) throws(TokenError) -> P256.Signing.PublicKey {
        let what = "\(purpose.rawValue) certificate"
        let bundle = try parse(bundlePEM, what: what)
        let leaf = bundle[0]
        guard let key = P256.Signing.PublicKey(leaf.publicKey) else {
            throw TokenError(.invalidArgument, "the \(what)'s key is not ECDSA P-256")
        }
        guard purpose.isStated(by: leaf) else {
            throw TokenError(
                .invalidArgument,
                "the certificate '\(leaf.subject)' is not an \(purpose.rawValue) key's: it lacks the extended key usage \(purpose.extendedKeyUsageOID) (a user's certificate is never accepted here)"
            )
        }
        if let rootCAPEM {
            let roots = try parse(rootCAPEM, what: "root CA")
            if let problem = IdentityCA.problem(
                with: leaf,
                as: purpose,
                intermediates: Array(bundle.dropFirst()),
                root: roots[0],
                at: now
            ) {
                throw TokenError(
                    .invalidArgument,
                    "the \(what) does not chain to the token's root for its purpose: \(problem)"
                )
            }
        }
        return key
    }
    /// The key of the bundle's first certificate, P-256 (X.509) or SM2 (`SM2Certificate`), once
    /// that certificate is shown to be a key for `purpose`, with the same checks as `key`; SM2
    /// signatures (the chain's, and then the key's own) are checked with `sm2ID`.
    public static func verificationKey(
        _ bundlePEM: String,
        for purpose: KeyPurpose,
        rootCAPEM: String?,
        now: Date = Date(),
        sm2ID: [UInt8] = SM2.defaultID
    ) throws(TokenError) -> VerificationKey {
        guard let first = try? PEMDocument.parseMultiple(pemString: bundlePEM).first, isSM2(first.derBytes) else {
            return .p256(try key(bundlePEM, for: purpose, rootCAPEM: rootCAPEM, now: now))
        }
        let what = "\(purpose.rawValue) certificate"
        let bundle = try sm2Certificates(bundlePEM, what: what)
        let leaf = bundle[0]
        guard purpose.isStated(by: leaf) else {
            throw TokenError(
                .invalidArgument,
                "the SM2 certificate '\(leaf.subjectCommonName ?? "?")' is not an \(purpose.rawValue) key's: it lacks the extended key usage \(purpose.extendedKeyUsageOID) (a user's certificate is never accepted here)"
            )
        }
        if let rootCAPEM {
            let roots = try sm2Certificates(rootCAPEM, what: "root CA")
            if let problem = SM2IdentityCA.problem(
                with: leaf,
                as: purpose,
                intermediates: Array(bundle.dropFirst()),
                root: roots[0],
                at: now,
                id: sm2ID
            ) {
                throw TokenError(
                    .invalidArgument,
                    "the \(what) does not chain to the token's root for its purpose: \(problem)"
                )
            }
        }
        return .sm2(leaf.publicKey, id: sm2ID)
    }

    /// Checks that `pem` is a bundle ukey reads: X.509 certificates, or SM2 ones.
    public static func validate(_ pem: String, what: String) throws(TokenError) {
        if let first = try? PEMDocument.parseMultiple(pemString: pem).first, isSM2(first.derBytes) {
            _ = try sm2Certificates(pem, what: what)
        } else {
            _ = try parse(pem, what: what)
        }
    }

    /// Whether a certificate's signature algorithm (the outer one) is SM2-with-SM3.
    static func isSM2(_ der: [UInt8]) -> Bool {
        guard let root = try? DER.parse(der), case .constructed(let nodes) = root.content else { return false }
        var parts = nodes.makeIterator()
        _ = parts.next()
        guard let algorithm = parts.next(), case .constructed(let fields) = algorithm.content,
            let oid = fields.first(where: { _ in true })
        else { return false }
        return (try? ASN1ObjectIdentifier(derEncoded: oid)) == SM2Certificate.signatureAlgorithm
    }

    /// The SM2 certificates of a PEM bundle, in order.
    static func sm2Certificates(_ pem: String, what: String) throws(TokenError) -> [SM2Certificate] {
        var certificates: [SM2Certificate] = []
        for der in try documents(pem, what: what) {
            do {
                certificates.append(try SM2Certificate(derRepresentation: der))
            } catch {
                throw TokenError(
                    .invalidArgument,
                    "the \(what) mixes SM2 and other certificates, or is not an SM2 certificate: \(error)"
                )
            }
        }
        return certificates
    }
}
