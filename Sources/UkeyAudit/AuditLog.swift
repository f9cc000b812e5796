import Foundation
import UkeyCore

/// The append-only audit log at `STATE/audit.log` (architecture.md section 6).
///
/// Appends are group-committed: callers enqueue records (cheap, in order) and one writer numbers,
/// chains, writes and fsyncs everything queued since its last pass, then wakes every caller whose
/// record is now durable. A caller replies to its client only after `durable`, so an acknowledged
/// call's record survives kill -9. Every `checkpointEvery` records or `checkpointInterval` seconds
/// the writer adds a checkpoint signed by the audit key and seals its position, so records cut off
/// the end are detected too.
///
/// If a write or fsync fails, the log stops taking records and every waiter gets the error:
/// callers must then fail their call rather than act unrecorded.
///
/// The parts: `AuditWriterState` decides (no I/O), `AuditWriter` writes on a queue of its own,
/// `AuditIntake` takes records from callers, `AuditProgress` wakes whoever waits.
public final class AuditLog: Sendable {
    public struct Configuration: Sendable {
        public var path: String
        public var checkpointEvery = 1000
        public var checkpointInterval: TimeInterval = 60
        /// Past this size the log is rotated (`AuditRotation`); nil: never.
        public var maxBytes: UInt64?
        /// Which archives a rotation removes (`AuditRetention`); by default none.
        public var retention = AuditRetention()
        /// How records reach the disk (tests inject failures here).
        public var fileIO = AuditFileIO.system
        /// Called by the writer with each batch of lines once they are durable, in log order:
        /// off-host forwarding (`AuditForwarder`). It must not block: it hands the lines on.
        public var durable: (@Sendable ([[UInt8]]) -> Void)?
        public init(path: String) { self.path = path }
    }

    /// An enqueued record's place in the queue; `durable(_:)` waits for it.
    public struct Ticket: Sendable, Hashable, Comparable {
        let value: UInt64
        public static func < (a: Ticket, b: Ticket) -> Bool { a.value < b.value }
    }

    /// How the log was found at open, for the daemon to report.
    public struct Recovery: Sendable {
        /// Records already in the file.
        public let records: UInt64
        /// Bytes of a record cut short by a crash, removed (it was never acknowledged).
        public let droppedPartialBytes: Int
    }

    public let configuration: Configuration
    public let recovery: Recovery
    let intake = AuditIntake()
    let progress: AuditProgress
    let file: AuditCurrentFile
    private let writer: AuditWriter

    /// Opens (or creates) the log, checks it against the sealed checkpoint and the tail seal, and
    /// continues its chain. `tailSealRequired`: the seal's key was in use before, so the seal file
    /// must hold a valid seal (an empty one was removed); otherwise a first seal is written.
    public init(
        configuration: Configuration,
        sealed: SealedCheckpoint?,
        checkpointing: any AuditCheckpointing,
        tailSeal: AuditTailSeal? = nil,
        tailSealRequired: Bool = false,
        problems: @escaping @Sendable (String) -> Void
    ) throws(AuditError) {
        let opened = try Self.recover(
            path: configuration.path,
            sealed: sealed,
            tailSeal: tailSeal,
            tailSealRequired: tailSealRequired
        )
        self.configuration = configuration
        self.recovery = opened.recovery
        progress = AuditProgress(lastSeq: opened.tail.lastSeq)
        file = AuditCurrentFile(fd: opened.fd, firstSeq: opened.firstSeq)
        let state = AuditWriterState(
            settings: .init(
                checkpointEvery: configuration.checkpointEvery,
                checkpointInterval: configuration.checkpointInterval,
                maxBytes: configuration.maxBytes,
                signatureAlgorithm: checkpointing.signatureAlgorithm
            ),
            position: .init(
                nextSeq: opened.tail.lastSeq + 1,
                head: opened.tail.head,
                fileSize: opened.tail.validEnd,
                fileFirstSeq: opened.firstSeq,
                sinceCheckpoint: opened.tail.sinceCheckpoint
            ),
            now: Date()
        )
        writer = AuditWriter(
            state: state,
            configuration: configuration,
            checkpointing: checkpointing,
            tailSeal: tailSeal,
            intake: intake,
            progress: progress,
            file: file,
            problems: problems
        )
    }

    /// Queues a record; cheap and ordered. Call `durable` before acknowledging the call.
    public func enqueue(_ entry: AuditEntry) -> Ticket {
        let (ticket, start) = intake.append(entry)
        if start { writer.start() }
        return Ticket(value: ticket)
    }

    /// Returns once the ticket's record is on disk; throws if the log failed or closed first.
    public func durable(_ ticket: Ticket) async throws(AuditError) {
        try await progress.durable(ticket.value)
    }

    /// Enqueues and waits until durable.
    public func append(_ entry: AuditEntry) async throws(AuditError) {
        try await durable(enqueue(entry))
    }

    /// The last record on disk.
    public var lastSeq: UInt64 { progress.lastSeq }

    /// Write passes (each one write and one fsync) so far: fewer than records under load.
    public var batches: Int { progress.batches }

    /// Writes what is queued plus a final checkpoint, and stops the writer. Later appends fail.
    /// Async, never blocking a thread: the final checkpoint needs the token.
    public func close() async {
        if intake.close() { writer.start() }
        await progress.waitUntilStopped()
    }
}
