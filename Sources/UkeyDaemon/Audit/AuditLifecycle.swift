import Foundation
import Logging
import UkeyAudit
import UkeyToken

/// Opening the audit log once the token is open, recording the daemon's own events, closing it.
extension AuditHolder {
    /// Opens the log, checked against the checkpoint sealed in the token, and records the start.
    func open(token: any TrustedRoot, path: String, stateDirectory: String, bootID: String, logger: Logger) async throws
    {
        // The certificates of the token's keys, fetched now: a key that lives in a TPM is
        // certified once, so audit verification and attestation work while the TPM is away.
        for key in [TokenKey.audit, .attestation] { _ = try await token.certificate(named: key.rawValue) }
        let sealed = try await TokenCheckpointing.sealed(in: token)
        var configuration = AuditLog.Configuration(path: path)
        configuration.checkpointEvery = settings.checkpointEvery
        configuration.checkpointInterval = TimeInterval(settings.checkpointSeconds)
        configuration.maxBytes = settings.maxSize > 0 ? UInt64(settings.maxSize) : nil
        configuration.retention = AuditRetention(
            keepArchives: settings.keepArchives > 0 ? settings.keepArchives : nil,
            maxTotalBytes: settings.maxTotal > 0 ? UInt64(settings.maxTotal) : nil
        )
        if let destination = settings.forward.flatMap(AuditForwarder.Destination.init(rawValue:)) {
            let forwarder =
                self.forwarder
                ?? AuditForwarder(destination: destination, socketPath: settings.forwardSocket) {
                    logger.warning("audit: \($0)")
                }
            self.forwarder = forwarder
            configuration.durable = { forwarder.forward($0) }
            logger.info("audit records are also forwarded to \(destination.rawValue) at \(forwarder.socketPath)")
        }
        let (tailKey, tailSealed) = await TokenCheckpointing.tailSealKey(in: token)
        let tailSeal = try AuditTailSeal(directory: stateDirectory, key: tailKey)
        let log = try AuditLog(
            configuration: configuration,
            sealed: sealed,
            checkpointing: TokenCheckpointing(token: token),
            tailSeal: tailSeal,
            tailSealRequired: tailSealed
        ) {
            logger.error("audit: \($0)")
        }
        if !tailSealed { try await TokenCheckpointing.storeTailSealKey(tailKey, in: token) }
        if log.recovery.droppedPartialBytes > 0 {
            logger.warning(
                "audit log: dropped \(log.recovery.droppedPartialBytes) bytes of a record cut short by a crash (never acknowledged)"
            )
        }
        self.log = log
        startDenialFlusher()
        try await log.append(
            AuditEntry(
                type: "daemon-start",
                actor: .daemon,
                subject: ["version": .string(DaemonVersion.version), "bootId": .string(bootID)]
            )
        )
        logger.info("audit log \(path): \(log.recovery.records) records, continuing")
    }

    /// Records an event of the daemon's own (a policy reload on SIGHUP); durable before it returns.
    func record(_ type: String, _ subject: [String: AuditValue], logger: Logger) async {
        guard let log else { return }
        do {
            try await log.append(AuditEntry(type: type, actor: .daemon, subject: subject))
        } catch {
            logger.error("audit: cannot record \(type): \(error)")
        }
    }

    /// Records the daemon's stop and closes the log with a final checkpoint.
    func close() async {
        denialFlusher.withLock { $0?.cancel() }
        guard let log else { return }
        for entry in flushCounts(all: true) { _ = log.enqueue(entry) }
        try? await log.append(AuditEntry(type: "daemon-stop", actor: .daemon))
        await log.close()
        await forwarder?.stop()
    }

    /// Writes the counts of permission-denial intervals that are over, every half interval.
    private func startDenialFlusher() {
        let task = Task.detached { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(DenialAggregator.interval / 2))
                guard let log else { continue }
                for entry in flushCounts() { _ = log.enqueue(entry) }
            }
        }
        denialFlusher.withLock {
            $0?.cancel()
            $0 = task
        }
    }
}
