import Foundation
import UkeyConcurrency

/// The log's writer: does what `AuditWriterState` says (write, sync, sign, seal, rotate) and
/// tells the waiting callers (`AuditProgress`). It runs on a queue of its own: every write ends
/// in an fsync, which must not hold one of the cooperative pool's threads (a 2-core host has two).
///
/// A run drains the intake until there is nothing to write, then ends; the first `enqueue` after
/// that starts the next one (`AuditIntake` lets exactly one caller do so), and so does a timer
/// when an idle log's checkpoint falls due. One run at a time, so the state is never interleaved,
/// even across the awaits on the token.
actor AuditWriter {
    private nonisolated let executor = QueueExecutor(label: "ukey.audit-writer")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    var state: AuditWriterState
    let configuration: AuditLog.Configuration
    let checkpointing: any AuditCheckpointing
    /// Sealed after every batch, before any of its records is acknowledged.
    let tailSeal: AuditTailSeal?
    let problems: @Sendable (String) -> Void
    let intake: AuditIntake
    let progress: AuditProgress
    let file: AuditCurrentFile
    /// Wakes an idle log for its timed checkpoint.
    private var timer: (deadline: Date, task: Task<Void, Never>)?

    init(
        state: AuditWriterState,
        configuration: AuditLog.Configuration,
        checkpointing: any AuditCheckpointing,
        tailSeal: AuditTailSeal?,
        intake: AuditIntake,
        progress: AuditProgress,
        file: AuditCurrentFile,
        problems: @escaping @Sendable (String) -> Void
    ) {
        self.state = state
        self.configuration = configuration
        self.checkpointing = checkpointing
        self.tailSeal = tailSeal
        self.intake = intake
        self.progress = progress
        self.file = file
        self.problems = problems
    }

    /// Starts a run; only for a caller that `AuditIntake` chose to.
    nonisolated func start() {
        Task { await run() }
    }

    private func run() async {
        while true {
            let (pending, issued, closing) = intake.take()
            for (entry, time) in pending { _ = state.enqueue(entry, at: time) }
            assert(state.enqueued == issued, "the intake and the writer number tickets alike")
            if closing { state.close() }
            switch state.nextBatch(now: Date()) {
            case .write(let batch):
                await write(batch)
            case .idle(let until):
                guard intake.finishRun() else { continue }
                wake(at: until)
                return
            case .stop(let reason):
                timer?.task.cancel()
                progress.stop(reason)
                return
            }
        }
    }

    private func write(_ batch: AuditWriterState.Batch) async {
        do throws(AuditError) {
            let batch = try await commit(batch)
            let through = state.acknowledged(batch)
            progress.advance(through: through.value, lastSeq: state.lastSeq, batch: batch.records > 0)
        } catch {
            state.failed(error)
            problems("the audit log failed and takes no more records: \(error)")
        }
    }

    /// Signs the batch's checkpoint, writes and syncs the batch, seals the tail, records the
    /// checkpoint, and rotates if the file is due: all that must precede an acknowledgement.
    /// Returns the batch as written.
    func commit(_ batch: AuditWriterState.Batch) async throws(AuditError) -> AuditWriterState.Batch {
        let batch = await signed(batch)
        guard !batch.lines.isEmpty else {
            _ = state.written(batch)
            return batch
        }
        try configuration.fileIO.append(batch.bytes, to: file.fd, file: "the audit log \(configuration.path)")
        let written = state.written(batch)
        configuration.durable?(batch.lines)
        if let tailSeal, let tail = written.tail { try tailSeal.write(tail) }
        if let sealed = written.sealed { await seal(sealed) }
        if written.rotationDue { try await rotate() }
        return batch
    }

    /// The batch with its checkpoint signed in, if it asks for one (without, if the token cannot
    /// sign now).
    func signed(_ batch: AuditWriterState.Batch) async -> AuditWriterState.Batch {
        guard let request = batch.checkpoint else { return batch }
        var batch = batch
        let signature: [UInt8]?
        do {
            signature = try await checkpointing.signCheckpoint(request.message)
        } catch {
            problems("audit checkpoint: \(error)")
            signature = nil
        }
        state.checkpointSigned(signature, for: &batch, now: Date())
        return batch
    }

    /// Records a written checkpoint outside the log; a failure is reported, and the next
    /// checkpoint records a later one.
    func seal(_ checkpoint: SealedCheckpoint) async {
        do {
            try await checkpointing.sealCheckpoint(checkpoint)
        } catch {
            problems("audit checkpoint: \(error)")
        }
    }

    private func wake(at deadline: Date?) {
        guard let deadline else {
            timer?.task.cancel()
            timer = nil
            return
        }
        if timer?.deadline == deadline { return }
        timer?.task.cancel()
        let delay = max(0, deadline.timeIntervalSinceNow)
        let task = Task { [weak self] in
            try? await Task.sleep(for: .seconds(delay))
            guard !Task.isCancelled, let self else { return }
            await self.timerFired(at: deadline)
        }
        timer = (deadline, task)
    }

    private func timerFired(at deadline: Date) async {
        // Cleared first, so the run may set a new one even for the same deadline.
        if timer?.deadline == deadline { timer = nil }
        guard intake.claim() else { return }
        await run()
    }
}
