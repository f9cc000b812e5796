import Crypto
import UkeyCore
import UkeyToken
import X509

/// The keys role on a TPM: audit checkpoints signed by a TPM-resident key, random bytes from
/// TPM2_GetRandom, and the four CA keys (root, token-keys, users, vtpm) as TPM primaries derived from
/// fixed templates (`TPMCertificateAuthorityKey`), so the store keeps no CA key. Users' own
/// signing keys stay in the sealed store.
public struct TPMKeys: KeysRole, TPMServedRole {
    let records: SoftToken
    let tpm: TPM
    let certificates = CertificateCache()

    public init(records: SoftToken, tpm: TPM) {
        self.records = records
        self.tpm = tpm
    }

    /// The CA keys a token initialised with keys = tpm signs with.
    public static func certificateAuthorityKeys(on tpm: TPM) throws(TokenError) -> [TokenKey: Certificate.PrivateKey] {
        var keys: [TokenKey: Certificate.PrivateKey] = [:]
        for (authority, name) in [
            (CertificateAuthorityKey.root, TokenKey.rootCA), (.tokenKeys, .tokenKeysCA), (.users, .userCA),
            (.vtpm, .vtpmCA),
        ] {
            keys[name] = Certificate.PrivateKey(try TPMCertificateAuthorityKey(tpm: tpm, authority: authority))
        }
        return keys
    }

    public func certificate(named name: String) async throws(TokenError) -> TokenCertificate {
        guard name == TokenKey.audit.rawValue else { return try await records.certificate(named: name) }
        return .x509(
            try await hardwareCertificate("tpm-audit", tokenKey: .audit) { () async throws(TPMError) in
                try await tpm.auditKey()
            }
        )
    }

    public func signAuditCheckpoint(_ checkpoint: [UInt8]) async throws(TokenError) -> [UInt8] {
        let digest = Array(SHA256.hash(data: AuditCheckpoint.signingDomain + checkpoint))
        let (raw, _) = try await tpmCall { () async throws(TPMError) in try await tpm.signWithAuditKey(sha256: digest) }
        do {
            return Array(try P256.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
        } catch {
            throw TokenError(.crypto, "the TPM's audit signature is malformed")
        }
    }

    public func sign(asUser user: String, digest: [UInt8]) async throws(TokenError) -> [UInt8] {
        try await records.sign(asUser: user, digest: digest)
    }

    public func random(count: Int) async throws(TokenError) -> [UInt8] {
        guard (1...1024).contains(count) else {
            throw TokenError(.invalidArgument, "random bytes: ask for 1-1024, not \(count)")
        }
        return try await tpmCall { () async throws(TPMError) in try await tpm.random(count: count) }
    }
}
