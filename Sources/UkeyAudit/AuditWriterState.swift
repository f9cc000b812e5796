import Foundation
import UkeyCore

/// The audit log's writer with the I/O taken out: it numbers and chains the queued records,
/// decides when a signed checkpoint is due and when the file is due for rotation, and says, when
/// a write completes or fails, which tickets that settles. `AuditWriter` does what it is told
/// (writes, syncs, signs, seals, rotates) and reports back; the time is always a parameter.
///
/// The rules:
/// - The nth record enqueued is ticket n. Tickets become durable in order: a batch settles every
///   ticket through the last record it carries, once its write, its seal and any rotation after
///   it are done (`acknowledged`).
/// - A batch takes every record queued so far (group commit: one write and one sync for all).
/// - A checkpoint follows a batch's records when records since the last one are unsigned and
///   `checkpointEvery` of them are, or `checkpointInterval` has passed since the last checkpoint,
///   or the log is closing. An idle log with unsigned records asks to be woken at the interval.
/// - Past `maxBytes` a completed write asks for a rotation (`closingBatch`, `newFileBatch`,
///   `rotated`); a token that cannot sign puts it off to a later write.
/// - A failure (write, sync, seal or rotation) stops the log: every ticket not yet durable fails,
///   so does every ticket handed out after, and no batch is handed out again.
/// - A closing log writes what is queued with a final checkpoint, then stops.
struct AuditWriterState: Sendable {
    struct Settings: Sendable {
        var checkpointEvery: Int
        var checkpointInterval: TimeInterval
        /// Past this size the file is rotated; nil: never.
        var maxBytes: UInt64?
        /// Written in each checkpoint as `alg`, for the verifier.
        var signatureAlgorithm: String
    }

    /// Where the chain stands: the next record's number, the hash it chains to, and the file.
    struct Position: Sendable, Hashable {
        var nextSeq: UInt64
        var head: String
        /// Bytes in the current file.
        var fileSize: UInt64
        /// The current file's first record (past 1 once a rotation began a new file).
        var fileFirstSeq: UInt64
        /// Records since the last checkpoint.
        var sinceCheckpoint: Int
    }

    /// A checkpoint waiting for the audit key's signature over `message`.
    struct CheckpointRequest: Sendable, Hashable {
        let seq: UInt64
        let head: String
        var message: [UInt8] { AuditLine.checkpointMessage(seq: seq, head: head) }
    }

    /// Lines to append with one write and one sync.
    struct Batch: Sendable {
        /// The lines in log order, without their newlines.
        var lines: [[UInt8]] = []
        /// The file offset the first line goes to.
        var offset: UInt64
        /// The last ticket the batch settles; nil when it carries no caller's record.
        var through: AuditLog.Ticket?
        /// Callers' records in it (a timed checkpoint alone carries none).
        var records = 0
        /// A checkpoint to sign before writing: `checkpointSigned` adds it.
        var checkpoint: CheckpointRequest?
        /// The signed checkpoint it carries and where it lies, to seal once written.
        var sealed: SealedCheckpoint?
        /// The last write of a closing log.
        var final = false

        /// The bytes to write: each line and its newline.
        var bytes: [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(lines.reduce(0) { $0 + $1.count + 1 })
            for line in lines {
                out += line
                out.append(0x0A)
            }
            return out
        }

        var byteCount: UInt64 { lines.reduce(0) { $0 + UInt64($1.count) + 1 } }
    }

    enum Next: Sendable {
        /// Write this (after signing its checkpoint, if it asks for one).
        case write(Batch)
        /// Nothing to write until a record is enqueued, or until the date, when a checkpoint is due.
        case idle(until: Date?)
        /// The log closed or failed: every ticket not durable fails with the error.
        case stop(AuditError)
    }

    /// What a completed write asks of the writer before its tickets are acknowledged.
    struct Written: Sendable, Hashable {
        /// The tail to seal: the file's last record and end. Nil when nothing was written.
        var tail: AuditTailSeal.State?
        /// A checkpoint to record outside the log.
        var sealed: SealedCheckpoint?
        var rotationDue = false
    }

    static let closed = AuditError(.io, "the audit log is closed")

    let settings: Settings
    private(set) var position: Position
    private(set) var lastCheckpoint: Date
    private var queue: [(entry: AuditEntry, time: Date)] = []
    /// The last ticket handed out, and the last one durable.
    private(set) var enqueued: UInt64 = 0
    private(set) var durableThrough: UInt64 = 0
    private(set) var failure: AuditError?
    private var closing = false
    private var finalWritten = false
    /// Where to go back to if the new file's checkpoint cannot be signed.
    private var beforeRotation: Position?

    init(settings: Settings, position: Position, now: Date) {
        self.settings = settings
        self.position = position
        self.lastCheckpoint = now
    }

    /// The last record written.
    var lastSeq: UInt64 { position.nextSeq - 1 }

    // MARK: callers

    mutating func enqueue(_ entry: AuditEntry, at time: Date) -> AuditLog.Ticket {
        enqueued += 1
        // A stopped log takes nothing: the ticket fails at once.
        if failure == nil { queue.append((entry, time)) }
        return AuditLog.Ticket(value: enqueued)
    }

    /// Durable, failed, or nil while it waits.
    func outcome(of ticket: AuditLog.Ticket) -> Result<Void, AuditError>? {
        if ticket.value <= durableThrough { return .success(()) }
        return failure.map { .failure($0) }
    }

    mutating func close() { closing = true }

    // MARK: batches

    mutating func nextBatch(now: Date) -> Next {
        // Closed once the final write is done with nothing queued after it: what comes later fails.
        if closing && finalWritten && queue.isEmpty { failure = failure ?? Self.closed }
        if let failure { return .stop(failure) }
        guard !queue.isEmpty || closing || checkpointDueByTime(now) else {
            let wake = position.sinceCheckpoint > 0 ? lastCheckpoint + settings.checkpointInterval : nil
            return .idle(until: wake)
        }
        var batch = Batch(offset: position.fileSize, through: queue.isEmpty ? nil : AuditLog.Ticket(value: enqueued))
        batch.records = queue.count
        batch.final = closing
        for (entry, time) in queue { batch.lines.append(chain(entry, at: time)) }
        queue.removeAll(keepingCapacity: true)
        if checkpointDue(now, forced: closing) {
            batch.checkpoint = CheckpointRequest(seq: position.nextSeq, head: position.head)
        }
        return .write(batch)
    }

    /// The log's own records (retention's removals), not a caller's: written with a checkpoint.
    mutating func ownBatch(_ entries: [(entry: AuditEntry, time: Date)], now: Date) -> Batch {
        var batch = Batch(offset: position.fileSize)
        for (entry, time) in entries { batch.lines.append(chain(entry, at: time)) }
        if checkpointDue(now, forced: true) {
            batch.checkpoint = CheckpointRequest(seq: position.nextSeq, head: position.head)
        }
        return batch
    }

    /// Adds the batch's checkpoint, signed. With no signature (the token cannot sign now; the
    /// writer reports it) the batch goes without, and the next is due an interval from now.
    mutating func checkpointSigned(_ signature: [UInt8]?, for batch: inout Batch, now: Date) {
        guard let request = batch.checkpoint else { return }
        batch.checkpoint = nil
        lastCheckpoint = now
        guard let signature else { return }
        precondition(request.seq == position.nextSeq && request.head == position.head, "a checkpoint out of turn")
        let entry = AuditEntry(
            type: "checkpoint",
            actor: nil,
            subject: [
                "upto": .int(Int(request.seq - 1)), "head": .string(request.head),
                "alg": .string(settings.signatureAlgorithm),
            ]
        )
        let (line, hash) = AuditLine.encode(
            seq: request.seq,
            time: now,
            entry: entry,
            prev: request.head,
            signature: signature
        )
        batch.sealed = SealedCheckpoint(seq: request.seq, offset: batch.offset + batch.byteCount, hash: hash)
        batch.lines.append(line)
        position.nextSeq += 1
        position.head = hash
        position.sinceCheckpoint = 0
    }

    /// The batch is in the file and synced.
    mutating func written(_ batch: Batch) -> Written {
        if batch.final { finalWritten = true }
        guard !batch.lines.isEmpty else { return Written() }
        position.fileSize = batch.offset + batch.byteCount
        let rotationDue = settings.maxBytes.map { position.fileSize >= $0 } ?? false
        return Written(tail: tail, sealed: batch.sealed, rotationDue: rotationDue)
    }

    /// The batch's seal and any rotation after it are done too: its tickets are durable. Returns
    /// the last ticket now durable.
    mutating func acknowledged(_ batch: Batch) -> AuditLog.Ticket {
        if let through = batch.through { durableThrough = max(durableThrough, through.value) }
        return AuditLog.Ticket(value: durableThrough)
    }

    /// A write, sync, seal or rotation failed: the log stops, and every ticket not durable fails.
    mutating func failed(_ error: AuditError) {
        failure = failure ?? error
        queue.removeAll()
    }

    // MARK: rotation

    /// Rotation, first: the checkpoint that closes the current file.
    func closingBatch() -> Batch {
        Batch(offset: position.fileSize, checkpoint: CheckpointRequest(seq: position.nextSeq, head: position.head))
    }

    /// Rotation, next (after the closing checkpoint is written): the new file's first record,
    /// `rotated`, which names the archive the current file becomes and chains to its last record,
    /// and the checkpoint to sign after it. Returns the archive's name too.
    mutating func newFileBatch(now: Date) -> (batch: Batch, archive: String) {
        beforeRotation = position
        let archive = AuditRotation.archiveName(first: position.fileFirstSeq, last: position.nextSeq - 1)
        let rotated = AuditEntry(
            type: "rotated",
            actor: nil,
            subject: [
                "previous": .string(archive), "upto": .int(Int(position.nextSeq - 1)), "head": .string(position.head),
            ]
        )
        var batch = Batch(offset: 0)
        batch.lines.append(chain(rotated, at: now))
        batch.checkpoint = CheckpointRequest(seq: position.nextSeq, head: position.head)
        return (batch, archive)
    }

    /// The new file could not be made (its checkpoint unsigned): the current file stays, and the
    /// rotation is asked for again after a later write.
    mutating func rotationPutOff() {
        if let beforeRotation { position = beforeRotation }
        beforeRotation = nil
    }

    /// The new file is in place holding `batch`.
    mutating func rotated(_ batch: Batch, now: Date) -> Written {
        guard let beforeRotation else { preconditionFailure("rotated without a new file") }
        position.fileFirstSeq = beforeRotation.nextSeq
        position.fileSize = batch.byteCount
        lastCheckpoint = now
        self.beforeRotation = nil
        return Written(tail: tail, sealed: batch.sealed)
    }

    // MARK: the chain

    private var tail: AuditTailSeal.State {
        AuditTailSeal.State(seq: position.nextSeq - 1, end: position.fileSize, head: position.head)
    }

    private func checkpointDueByTime(_ now: Date) -> Bool {
        position.sinceCheckpoint > 0 && now.timeIntervalSince(lastCheckpoint) >= settings.checkpointInterval
    }

    private func checkpointDue(_ now: Date, forced: Bool) -> Bool {
        position.sinceCheckpoint > 0
            && (forced || position.sinceCheckpoint >= settings.checkpointEvery || checkpointDueByTime(now))
    }

    private mutating func chain(_ entry: AuditEntry, at time: Date) -> [UInt8] {
        let (line, hash) = AuditLine.encode(seq: position.nextSeq, time: time, entry: entry, prev: position.head)
        position.nextSeq += 1
        position.head = hash
        position.sinceCheckpoint += 1
        return line
    }
}
