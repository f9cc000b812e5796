import Crypto
import UkeyCore
import X509

/// The token's own keys. They are restricted, like a TPM's restricted keys: they sign only what
/// the token builds itself (certificates, quotes, audit checkpoints), never caller data, or any
/// caller could forge a quote.
public enum TokenKey: String, CaseIterable, Sendable, Codable {
    /// Issues user identity certificates and the token's own key certificates.
    case rootCA = "root-ca"
    /// Signs quotes.
    case attestation
    /// Signs audit-log checkpoints.
    case audit
    /// The root CA's sub-CA for the token's own keys: certifies the attestation and audit keys
    /// and nothing else (`KeyPurpose`).
    case tokenKeysCA = "token-keys-ca"
    /// The root CA's sub-CA for users: certifies users' identity keys and nothing else.
    case userCA = "user-ca"
    /// The root CA's sub-CA for vTPMs: certifies the endorsement keys of the vTPMs ukeyd runs
    /// for its VMs and nothing else. A token initialised before it existed makes it at its
    /// first vTPM (the root CA's key is still the token's).
    case vtpmCA = "vtpm-ca"
}

/// The key role of a trusted root (architecture.md section 3).
public protocol KeysRole: Sendable {
    /// A certificate by name: `root-ca`, `token-keys-ca`, `user-ca`, `attestation`, `audit`,
    /// `policy-signer`, or a user's.
    func certificate(named name: String) async throws(TokenError) -> TokenCertificate
    /// Signs an audit checkpoint with the audit key. The token prefixes a domain tag
    /// (`AuditCheckpoint.signingDomain`) so the signature can never pass for anything else.
    func signAuditCheckpoint(_ checkpoint: [UInt8]) async throws(TokenError) -> [UInt8]
    /// Signs a caller's SHA-256 digest with a user's own key (`io.ukey.Token.Sign`), under
    /// `SigningContext.tokenSign`: the key signs the context followed by the digest, never the
    /// digest alone, so its signature can never pass for a quote's or a checkpoint's.
    func sign(asUser user: String, digest: [UInt8]) async throws(TokenError) -> [UInt8]
    /// Random bytes from the token's generator.
    func random(count: Int) async throws(TokenError) -> [UInt8]
}
