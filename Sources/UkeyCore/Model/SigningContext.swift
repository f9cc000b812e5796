/// Where audit-checkpoint signatures are bound, so a checkpoint signature is never a valid
/// signature over a quote or certificate.
public enum AuditCheckpoint {
    public static let signingDomain = Array("ukey-audit-checkpoint-v1\u{0}".utf8)
}
