import UkeyAPI

extension Audit.Verify.Reply {
    /// The verification as `io.ukey.Audit.Verify` answers it (ukeyd), and as `ukeyctl audit
    /// verify --log` prints it offline: one shape for both.
    public init(_ verification: AuditChainVerification) {
        self.init(
            ok: verification.ok,
            count: verification.count,
            checkpoints: verification.checkpoints,
            unsignedTail: verification.unsignedTail,
            firstBad: verification.firstBad.map { Int($0) },
            reason: verification.reason,
            files: verification.files,
            removedByRetention: verification.removedByRetention.map {
                Audit.Verify.RemovedArchive(
                    archive: $0.name,
                    upto: Int($0.upto),
                    head: $0.head,
                    recordedAt: Int($0.recordedAt)
                )
            }
        )
    }
}
