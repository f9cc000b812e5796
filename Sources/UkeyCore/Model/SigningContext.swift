/// What a token's signature is over: every message a ukey key signs starts with a context that no
/// other kind of message can start with, as TPM 2.0's TPM_GENERATED_VALUE does for what a TPM
/// builds itself. So no signature can be replayed as another kind:
/// - a ukey-v1 quote starts with its magic `UKEYQT01`;
/// - an audit checkpoint with `AuditCheckpoint.signingDomain`;
/// - whatever a user signs through `io.ukey.Token.Sign` with `SigningContext.tokenSign`, followed
///   by the caller's 32-byte digest. The caller chooses the digest, never the first bytes, so
///   such a signature is never over bytes that parse as a quote or a checkpoint.
public enum SigningContext {
    /// The prefix of every message signed for a caller by `io.ukey.Token.Sign`.
    public static let tokenSign = Array("ukey-token-sign-v1\u{0}".utf8)

    /// The message a user's key signs for a caller's digest.
    public static func tokenSignMessage(digest: [UInt8]) -> [UInt8] {
        tokenSign + digest
    }
}

/// Where audit-checkpoint signatures are bound, so a checkpoint signature is never a valid
/// signature over a quote, a certificate or a caller's digest.
public enum AuditCheckpoint {
    public static let signingDomain = Array("ukey-audit-checkpoint-v1\u{0}".utf8)
}
