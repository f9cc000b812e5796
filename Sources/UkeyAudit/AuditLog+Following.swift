/// Waiting for new records, for readers that follow the log as it grows (`ukeyctl audit --follow`,
/// through `io.ukey.Audit.Query` with `more`).
extension AuditLog {
    /// Wakes (coalesced) after each batch reaches the disk, until `cancel` or close.
    public func follow() -> (updates: AsyncStream<Void>, cancel: @Sendable () -> Void) {
        progress.follow(finished: intake.closing)
    }

    /// Returns once a record after `seq` is durable, the log stops, or the task is cancelled: a
    /// follower sleeps here instead of polling the file.
    public func waitForRecords(after seq: UInt64) async {
        await progress.waitForRecords(after: seq)
    }
}
