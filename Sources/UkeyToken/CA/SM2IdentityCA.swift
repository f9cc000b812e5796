import Foundation
import UkeySM

/// The token's certificate hierarchy for a token whose keys are SM2: the same two levels and the
/// same statements as `IdentityCA`'s X.509 one, in `SM2Certificate`s signed SM2-with-SM3 with
/// the token's distinguishing ID:
///
///     root CA (self-signed, path length 1)
///     +-- token-keys CA (path length 0, policy token-keys) -> attestation key, audit key
///     +-- user CA (path length 0, policy users)            -> users' identity keys
///
/// Each leaf names its purpose by extended key usage and certificate policy, with the same OIDs
/// as the X.509 hierarchy (`KeyPurpose`, `CertificatePolicy`), so a verifier checks the same
/// things whichever algorithm a token uses. Pure functions: keys, names and the time come in.
public enum SM2IdentityCA {
    /// A self-signed root CA certificate.
    public static func makeRoot(
        key: SM2PrivateKey,
        commonName: String,
        now: Date,
        id: [UInt8],
        validity: TimeInterval = IdentityCA.defaultRootValidity
    ) throws(TokenError) -> SM2Certificate {
        try certify { () throws(SMError) -> SM2Certificate in
            try SM2Certificate.issue(
                subject: commonName,
                subjectKey: try key.publicKey,
                issuer: commonName,
                issuerKey: key,
                notBefore: now - IdentityCA.backdating,
                notAfter: now + validity,
                isCertificateAuthority: true,
                maxPathLength: 1,
                id: id
            )
        }
    }

    /// A sub-CA certificate for `subjectKey`, issued by the root, for one certificate policy.
    public static func makeSubordinate(
        _ policy: CertificatePolicy,
        commonName: String,
        subjectKey: SM2PublicKey,
        rootKey: SM2PrivateKey,
        rootCertificate: SM2Certificate,
        now: Date,
        id: [UInt8]
    ) throws(TokenError) -> SM2Certificate {
        try requireKey(rootKey, of: rootCertificate)
        return try certify { () throws(SMError) -> SM2Certificate in
            try SM2Certificate.issue(
                subject: commonName,
                subjectKey: subjectKey,
                issuer: rootCertificate.subjectCommonName ?? "",
                issuerKey: rootKey,
                notBefore: now - IdentityCA.backdating,
                notAfter: min(now + IdentityCA.defaultRootValidity, rootCertificate.notAfter),
                isCertificateAuthority: true,
                maxPathLength: 0,
                extensions: [policiesExtension(policy)],
                id: id
            )
        }
    }

    /// A leaf certificate for `subjectKey` with one purpose, issued by that purpose's sub-CA.
    public static func issue(
        commonName: String,
        subjectKey: SM2PublicKey,
        purpose: KeyPurpose,
        caKey: SM2PrivateKey,
        caCertificate: SM2Certificate,
        now: Date,
        id: [UInt8],
        validity: TimeInterval = IdentityCA.defaultUserValidity
    ) throws(TokenError) -> SM2Certificate {
        guard states(caCertificate, policy: purpose.policy) else {
            throw TokenError(
                .crypto,
                "the CA '\(caCertificate.subjectCommonName ?? "?")' does not issue \(purpose.rawValue) certificates"
            )
        }
        try requireKey(caKey, of: caCertificate)
        return try certify { () throws(SMError) -> SM2Certificate in
            try SM2Certificate.issue(
                subject: commonName,
                subjectKey: subjectKey,
                issuer: caCertificate.subjectCommonName ?? "",
                issuerKey: caKey,
                notBefore: now - IdentityCA.backdating,
                notAfter: min(now + validity, caCertificate.notAfter),
                isCertificateAuthority: false,
                extensions: [
                    SM2CertificateExtension(
                        oid: SM2CertificateExtension.oid(OIDList.extendedKeyUsage),
                        critical: false,
                        value: OIDList.sequence(of: [purpose.identifier])
                    ),
                    policiesExtension(purpose.policy),
                ],
                id: id
            )
        }
    }

    /// Why `leaf` is not a certificate for `purpose` under `root`, or nil when it is: the same
    /// checks as `IdentityCA.problem` makes of an X.509 chain (purpose by extended key usage and
    /// policy; the issuer the root's sub-CA for that policy, a CA of path length 0; signatures
    /// with `id` and validity at `now`).
    public static func problem(
        with leaf: SM2Certificate,
        as purpose: KeyPurpose,
        intermediates: [SM2Certificate],
        root: SM2Certificate,
        at now: Date,
        id: [UInt8]
    ) -> String? {
        let policy = purpose.policy
        let name = leaf.subjectCommonName ?? "?"
        guard !leaf.isCertificateAuthority, purpose.isStated(by: leaf) else {
            return
                "certificate '\(name)' is not a \(purpose.rawValue) key's: it lacks the extended key usage \(purpose.extendedKeyUsageOID)"
        }
        guard states(leaf, policy: policy) else {
            return "certificate '\(name)' is not under the \(policy.rawValue) policy \(policy.oid)"
        }
        guard let ca = intermediates.first(where: { $0.subjectName == leaf.issuerName }) else {
            return
                "certificate '\(name)' needs its issuer '\(leaf.issuerCommonName ?? "?")' (the token's \(policy.caName)) in the chain"
        }
        guard states(ca, policy: policy), ca.isCertificateAuthority, ca.maxPathLength == 0 else {
            return
                "'\(ca.subjectCommonName ?? "?")' is not the token's \(policy.caName): it may not issue \(purpose.rawValue) certificates"
        }
        if let problem = verify(leaf, issuedBy: ca, at: now, id: id) { return problem }
        if let problem = verify(ca, issuedBy: root, at: now, id: id) { return "sub-CA \(problem)" }
        return nil
    }

    /// Whether `certificate` was issued by `issuer` (names, signature with `id`) and is valid at `now`.
    public static func verify(
        _ certificate: SM2Certificate,
        issuedBy issuer: SM2Certificate,
        at now: Date,
        id: [UInt8]
    ) -> String? {
        guard certificate.issuerName == issuer.subjectName else { return "certificate issuer does not name the CA" }
        guard issuer.isCertificateAuthority else {
            return "the issuer '\(issuer.subjectCommonName ?? "?")' is not a CA"
        }
        guard certificate.isSigned(by: issuer.publicKey, id: id) else {
            return
                "certificate signature does not verify with the CA's key (and the ID \(String(decoding: id, as: UTF8.self)))"
        }
        guard certificate.isValid(at: now) else { return "certificate is not valid at \(now)" }
        return nil
    }

    /// Whether `certificate` states `policy` in its certificatePolicies.
    public static func states(_ certificate: SM2Certificate, policy: CertificatePolicy) -> Bool {
        guard let ext = certificate.extensionValue(oid: SM2CertificateExtension.oid(OIDList.certificatePolicies)) else {
            return false
        }
        return OIDList.identifiers(in: ArraySlice(ext.value), nested: true)?.contains(policy.identifier) == true
    }

    static func policiesExtension(_ policy: CertificatePolicy) -> SM2CertificateExtension {
        SM2CertificateExtension(
            oid: SM2CertificateExtension.oid(OIDList.certificatePolicies),
            critical: false,
            value: OIDList.sequence(of: [OIDList.sequence(of: [policy.identifier])])
        )
    }

    private static func requireKey(_ key: SM2PrivateKey, of certificate: SM2Certificate) throws(TokenError) {
        guard (try? key.publicKey) == certificate.publicKey else {
            throw TokenError(
                .crypto,
                "the CA key is not the one its certificate '\(certificate.subjectCommonName ?? "?")' names"
            )
        }
    }

    private static func certify(_ body: () throws(SMError) -> SM2Certificate) throws(TokenError) -> SM2Certificate {
        do {
            return try body()
        } catch {
            throw TokenError(.crypto, "cannot issue an SM2 certificate: \(error)")
        }
    }
}

extension KeyPurpose {
    /// Whether an SM2 certificate's extended key usage names this purpose.
    public func isStated(by certificate: SM2Certificate) -> Bool {
        guard let ext = certificate.extensionValue(oid: SM2CertificateExtension.oid(OIDList.extendedKeyUsage)) else {
            return false
        }
        return OIDList.identifiers(in: ArraySlice(ext.value), nested: false)?.contains(identifier) == true
    }
}
