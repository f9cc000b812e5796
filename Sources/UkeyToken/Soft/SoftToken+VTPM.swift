import Crypto
import Foundation
import X509

/// The vTPM sub-CA: certifies the endorsement keys of the vTPMs ukeyd runs, and nothing else.
/// A token initialised before the sub-CA existed makes it at its first vTPM certificate, signed
/// by its root CA's key where that key is (the store, or the TPM with keys = tpm); its own key
/// is where the other sub-CAs' are.
extension SoftToken {
    /// Issues a vTPM's EK or platform certificate. Signing happens outside the actor (a TPM's CA
    /// key is awaited on the TPM's executor), between the isolated steps that read and keep.
    public nonisolated func issueVTPMCertificate(
        _ request: VTPMCertificateRequest
    ) async throws(TokenError) -> Certificate {
        let authority = try await vtpmAuthority()
        return try await VTPMCertificates.issue(
            request,
            caKey: authority.key,
            caCertificate: authority.certificate,
            now: configuration.clock()
        )
    }

    /// The vTPM sub-CA's key and certificate, made first if the token has none.
    public nonisolated func vtpmAuthority() async throws(TokenError) -> (
        key: Certificate.PrivateKey, certificate: Certificate
    ) {
        guard case .p256 = keyAlgorithm else {
            throw TokenError(
                .invalidArgument,
                "this token's keys are SM2, and a vTPM's endorsement key is RSA or NIST ECC: initialise a P-256 token to run vTPMs"
            )
        }
        switch try await vtpmAuthorityDraft() {
        case .existing(let key, let certificate):
            return (key, certificate)
        case .missing(let key, let softKey, let root, let rootKey, let serial, let now):
            let certificate = try await IdentityCA.makeSubordinate(
                .vtpm,
                commonName: "ukey \(CertificatePolicy.vtpm.rawValue) CA \(serial)",
                subjectKey: key.publicKey,
                rootKey: rootKey,
                rootCertificate: root,
                now: now
            )
            return try await keepVTPMAuthority(certificate, key: key, softKey: softKey)
        }
    }

    enum VTPMAuthorityDraft {
        case existing(Certificate.PrivateKey, Certificate)
        case missing(
            key: Certificate.PrivateKey,
            softKey: P256.Signing.PrivateKey?,
            root: Certificate,
            rootKey: Certificate.PrivateKey,
            serial: String,
            now: Date
        )
    }

    private func vtpmAuthorityDraft() throws(TokenError) -> VTPMAuthorityDraft {
        try requireUnlocked()
        if store[SoftRecordName.certificate(TokenKey.vtpmCA.rawValue)] != nil {
            let ca = try subordinateCA(.vtpm)
            return .existing(ca.key, ca.certificate)
        }
        guard let rootDER = store[SoftRecordName.certificate(TokenKey.rootCA.rawValue)] else {
            throw TokenError(.store, "the sealed store lacks the root CA's certificate")
        }
        let rootKey: Certificate.PrivateKey
        if store[SoftRecordName.key(.rootCA)] != nil {
            rootKey = Certificate.PrivateKey(try privateKey(.rootCA))
        } else if let external = configuration.certificateAuthorityKeys[.rootCA] {
            rootKey = external
        } else {
            throw TokenError(.store, "the root CA's key is in a TPM (keys = \"tpm\"), and this configuration has none")
        }
        let key: Certificate.PrivateKey
        var softKey: P256.Signing.PrivateKey?
        if store[SoftRecordName.key(.rootCA)] == nil, let external = configuration.certificateAuthorityKeys[.vtpmCA] {
            key = external
        } else {
            let made = P256.Signing.PrivateKey()
            softKey = made
            key = Certificate.PrivateKey(made)
        }
        return .missing(
            key: key,
            softKey: softKey,
            root: try IdentityCA.certificate(der: rootDER),
            rootKey: rootKey,
            serial: token.serial,
            now: configuration.clock()
        )
    }

    /// Keeps the new sub-CA, unless another call made one meanwhile (that one is kept: it may
    /// have certified a vTPM already).
    private func keepVTPMAuthority(
        _ certificate: Certificate,
        key: Certificate.PrivateKey,
        softKey: P256.Signing.PrivateKey?
    ) throws(TokenError) -> (key: Certificate.PrivateKey, certificate: Certificate) {
        if store[SoftRecordName.certificate(TokenKey.vtpmCA.rawValue)] != nil { return try subordinateCA(.vtpm) }
        var changes: [String: [UInt8]?] = [
            SoftRecordName.certificate(TokenKey.vtpmCA.rawValue): try IdentityCA.der(certificate)
        ]
        if let softKey { changes[SoftRecordName.key(.vtpmCA)] = Array(softKey.rawRepresentation) }
        try commit(changes)
        return (key, certificate)
    }
}
