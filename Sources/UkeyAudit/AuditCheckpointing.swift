/// What the log needs from the token for checkpoints: the audit key's signature over a
/// checkpoint message, and a durable place outside the log for the last checkpoint's position.
public protocol AuditCheckpointing: Sendable {
    /// Signs `message`; the token prefixes `AuditCheckpoint.signingDomain`.
    func signCheckpoint(_ message: [UInt8]) async throws -> [UInt8]
    /// Records the last durable checkpoint in the sealed store (monotonic).
    func sealCheckpoint(_ checkpoint: SealedCheckpoint) async throws
    /// The name of the signatures `signCheckpoint` makes ("ecdsa-p256-sha256", "sm2-sm3"), written
    /// in each checkpoint as `alg` for the reader; a verifier checks it against the audit key.
    var signatureAlgorithm: String { get }
}

extension AuditCheckpointing {
    public var signatureAlgorithm: String { CheckpointKey.p256Algorithm }
}
