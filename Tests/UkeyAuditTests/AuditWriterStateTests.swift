import Foundation
import Testing
import UkeyCore

@testable import UkeyAudit

/// The writer's decisions without a file, a token or a clock: every transition of
/// `AuditWriterState`, and the lines it hands out checked as a verifier reads them.
@Suite("Audit log: the writer's state machine")
struct AuditWriterStateTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    /// The state machine only embeds a signature; the token's own is tested elsewhere.
    static let signature = Array(repeating: UInt8(0x5A), count: 70)
    static let failure = AuditError(.io, "cannot write the audit log: No space left on device")

    static func machine(
        every: Int = 1000,
        interval: TimeInterval = 60,
        maxBytes: UInt64? = nil,
        fileSize: UInt64 = 0
    ) -> AuditWriterState {
        AuditWriterState(
            settings: .init(
                checkpointEvery: every,
                checkpointInterval: interval,
                maxBytes: maxBytes,
                signatureAlgorithm: CheckpointKey.p256Algorithm
            ),
            position: .init(
                nextSeq: 1,
                head: AuditLine.genesis,
                fileSize: fileSize,
                fileFirstSeq: 1,
                sinceCheckpoint: 0
            ),
            now: start
        )
    }

    static func ticket(_ n: UInt64) -> AuditLog.Ticket { AuditLog.Ticket(value: n) }

    /// A ticket's outcome as text: "waiting", "durable" or the failure.
    static func outcome(_ state: AuditWriterState, _ n: UInt64) -> String {
        switch state.outcome(of: ticket(n)) {
        case nil: "waiting"
        case .success?: "durable"
        case .failure(let error)?: "failed: \(error)"
        }
    }

    static func batch(_ next: AuditWriterState.Next) throws -> AuditWriterState.Batch {
        guard case .write(let batch) = next else {
            Issue.record("expected a batch, got \(next)")
            throw AuditError(.invalidArgument, "no batch")
        }
        return batch
    }

    static func idle(_ next: AuditWriterState.Next) -> Date?? {
        guard case .idle(let until) = next else { return nil }
        return .some(until)
    }

    static func stopped(_ next: AuditWriterState.Next) -> String? {
        guard case .stop(let error) = next else { return nil }
        return error.message
    }

    static func parsed(_ batch: AuditWriterState.Batch) throws -> [AuditLine.Parsed] {
        try batch.lines.map { line throws(AuditError) in try AuditLine.parse(line) }
    }

    /// Writes `batch` (as the writer would, with its checkpoint signed) and acknowledges it.
    static func complete(
        _ state: inout AuditWriterState,
        _ batch: AuditWriterState.Batch,
        now: Date = start
    ) -> (written: AuditWriterState.Written, durable: AuditLog.Ticket) {
        var batch = batch
        if batch.checkpoint != nil { state.checkpointSigned(signature, for: &batch, now: now) }
        let written = state.written(batch)
        return (written, state.acknowledged(batch))
    }

    @Test(
        "enqueue hands out tickets in order; a batch takes every queued record, numbered and chained from the head; its tickets are durable only once acknowledged"
    )
    func enqueueAndBatch() throws {
        var state = Self.machine()
        #expect((1...3).map { state.enqueue(entry($0), at: Self.start).value } == [1, 2, 3])
        let batch = try Self.batch(state.nextBatch(now: Self.start))
        #expect(batch.through == Self.ticket(3) && batch.records == 3 && batch.checkpoint == nil && batch.offset == 0)
        let lines = try Self.parsed(batch)
        #expect(lines.map(\.seq) == [1, 2, 3])
        #expect(lines.allSatisfy { $0.selfConsistent })
        #expect(lines.map(\.prev) == [AuditLine.genesis, lines[0].hash, lines[1].hash])
        #expect(batch.bytes == Array(batch.lines.joined(separator: [0x0A])) + [0x0A])

        let written = state.written(batch)
        #expect(
            written
                == .init(
                    tail: .init(seq: 3, end: UInt64(batch.bytes.count), head: lines[2].hash),
                    sealed: nil,
                    rotationDue: false
                )
        )
        #expect(Self.outcome(state, 1) == "waiting", "written, but its seal is not: not yet acknowledged")
        #expect(state.acknowledged(batch) == Self.ticket(3))
        #expect((1...3).map { Self.outcome(state, $0) } == ["durable", "durable", "durable"])
        #expect(state.lastSeq == 3 && state.position.fileSize == UInt64(batch.bytes.count))
        // Unsigned records: idle until the interval is up.
        #expect(Self.idle(state.nextBatch(now: Self.start + 1)) == .some(Self.start + 60))
    }

    @Test(
        "a record enqueued while a batch is out waits for the next batch, which chains on; tickets become durable in order"
    )
    func durableInOrder() throws {
        var state = Self.machine()
        _ = state.enqueue(entry(1), at: Self.start)
        _ = state.enqueue(entry(2), at: Self.start)
        let first = try Self.batch(state.nextBatch(now: Self.start))
        let third = state.enqueue(entry(3), at: Self.start)
        #expect(third == Self.ticket(3) && first.through == Self.ticket(2))
        #expect(Self.complete(&state, first).durable == Self.ticket(2))
        #expect([1, 2, 3].map { Self.outcome(state, $0) } == ["durable", "durable", "waiting"])

        let second = try Self.batch(state.nextBatch(now: Self.start))
        #expect(second.through == third && second.offset == UInt64(first.bytes.count))
        #expect(try Self.parsed(second).map(\.seq) == [3])
        #expect(try Self.parsed(second)[0].prev == Self.parsed(first)[1].hash)
        #expect(Self.complete(&state, second).durable == third)
        #expect(Self.outcome(state, 3) == "durable")
    }

    @Test(
        "a checkpoint is due once checkpointEvery records are unsigned: it follows the batch's records, signed over the head, and is sealed where it lies"
    )
    func checkpointByCount() throws {
        var state = Self.machine(every: 3)
        _ = state.enqueue(entry(1), at: Self.start)
        _ = state.enqueue(entry(2), at: Self.start)
        let first = try Self.batch(state.nextBatch(now: Self.start))
        #expect(first.checkpoint == nil, "two unsigned records of three")
        _ = Self.complete(&state, first)

        for n in 3...7 { _ = state.enqueue(entry(n), at: Self.start) }
        var batch = try Self.batch(state.nextBatch(now: Self.start))
        let records = try Self.parsed(batch)
        let request = try #require(batch.checkpoint)
        // One checkpoint after all five records, not one in their middle.
        #expect(request == .init(seq: 8, head: records[4].hash))
        #expect(request.message == AuditLine.checkpointMessage(seq: 8, head: records[4].hash))

        state.checkpointSigned(Self.signature, for: &batch, now: Self.start + 1)
        #expect(batch.checkpoint == nil)
        let checkpoint = try #require(try Self.parsed(batch).last)
        #expect(checkpoint.type == "checkpoint" && checkpoint.seq == 8 && checkpoint.selfConsistent)
        #expect(checkpoint.upto == 7 && checkpoint.head == records[4].hash && checkpoint.prev == records[4].hash)
        #expect(checkpoint.signature == Self.signature && checkpoint.algorithm == CheckpointKey.p256Algorithm)
        let offset = first.byteCount + batch.lines.dropLast().reduce(0) { $0 + UInt64($1.count) + 1 }
        #expect(batch.sealed == SealedCheckpoint(seq: 8, offset: offset, hash: checkpoint.hash))

        let written = state.written(batch)
        #expect(written.sealed == batch.sealed && written.tail?.seq == 8)
        #expect(state.acknowledged(batch) == Self.ticket(7))
        // Everything is signed: idle with no wake-up.
        #expect(Self.idle(state.nextBatch(now: Self.start + 1_000)) == .some(nil))
    }

    @Test(
        "a checkpoint is due by time: an idle log with unsigned records asks to be woken at the interval and then writes a checkpoint alone; records after the interval carry one"
    )
    func checkpointByTime() throws {
        var state = Self.machine(interval: 10)
        #expect(Self.idle(state.nextBatch(now: Self.start + 100)) == .some(nil), "nothing unsigned, nothing due")
        _ = state.enqueue(entry(1), at: Self.start)
        _ = Self.complete(&state, try Self.batch(state.nextBatch(now: Self.start)))
        #expect(Self.idle(state.nextBatch(now: Self.start + 9)) == .some(Self.start + 10))

        let alone = try Self.batch(state.nextBatch(now: Self.start + 10))
        #expect(alone.lines.isEmpty && alone.records == 0 && alone.through == nil)
        #expect(alone.checkpoint == .init(seq: 2, head: state.position.head))
        let (written, durable) = Self.complete(&state, alone, now: Self.start + 10)
        #expect(written.sealed?.seq == 2 && written.tail?.seq == 2)
        #expect(durable == Self.ticket(1), "a checkpoint alone settles no ticket")
        #expect(Self.idle(state.nextBatch(now: Self.start + 11)) == .some(nil))

        // Records that arrive once the interval is up carry their checkpoint.
        _ = state.enqueue(entry(2), at: Self.start + 15)
        _ = Self.complete(&state, try Self.batch(state.nextBatch(now: Self.start + 15)), now: Self.start + 15)
        _ = state.enqueue(entry(3), at: Self.start + 30)
        let late = try Self.batch(state.nextBatch(now: Self.start + 30))
        #expect(late.checkpoint == .init(seq: 5, head: try Self.parsed(late)[0].hash))
    }

    @Test(
        "a token that cannot sign: the batch goes without its checkpoint, and the next one is due an interval later"
    )
    func unsignedCheckpoint() throws {
        var state = Self.machine(every: 1, interval: 10)
        _ = state.enqueue(entry(1), at: Self.start)
        var batch = try Self.batch(state.nextBatch(now: Self.start))
        #expect(batch.checkpoint != nil)
        state.checkpointSigned(nil, for: &batch, now: Self.start + 5)
        #expect(batch.lines.count == 1 && batch.sealed == nil && batch.checkpoint == nil)
        #expect(state.written(batch).sealed == nil)
        #expect(state.acknowledged(batch) == Self.ticket(1), "the record is durable all the same")
        #expect(Self.idle(state.nextBatch(now: Self.start + 6)) == .some(Self.start + 15))
    }

    @Test(
        "rotation is due once a write takes the file to maxBytes: a closing checkpoint, then a new file that starts with a rotated record naming the archive, and its checkpoint"
    )
    func rotation() throws {
        var state = Self.machine(maxBytes: 1_000, fileSize: 600)
        _ = state.enqueue(entry(1), at: Self.start)
        let small = try Self.batch(state.nextBatch(now: Self.start))
        #expect(Self.complete(&state, small).written.rotationDue == false, "\(state.position.fileSize) bytes")
        for n in 2...3 { _ = state.enqueue(entry(n), at: Self.start) }
        let (written, _) = Self.complete(&state, try Self.batch(state.nextBatch(now: Self.start)))
        #expect(written.rotationDue && state.position.fileSize >= 1_000)
        let before = state.position

        var closing = state.closingBatch()
        #expect(closing.checkpoint == .init(seq: 4, head: before.head) && closing.offset == before.fileSize)
        state.checkpointSigned(Self.signature, for: &closing, now: Self.start)
        let closed = state.written(closing)
        #expect(closed.sealed == SealedCheckpoint(seq: 4, offset: before.fileSize, hash: state.position.head))
        let closingHash = state.position.head

        var (opening, archive) = state.newFileBatch(now: Self.start)
        #expect(archive == "audit-000000000001-000000000004.log")
        #expect(opening.offset == 0 && opening.checkpoint?.seq == 6)
        state.checkpointSigned(Self.signature, for: &opening, now: Self.start)
        let lines = try Self.parsed(opening)
        #expect(lines.map(\.type) == ["rotated", "checkpoint"] && lines.map(\.seq) == [5, 6])
        #expect(lines[0].previous == archive && lines[0].upto == 4 && lines[0].head == closingHash)
        #expect(lines[0].prev == closingHash && lines[1].prev == lines[0].hash)

        let rotated = state.rotated(opening, now: Self.start)
        #expect(
            rotated.sealed == SealedCheckpoint(seq: 6, offset: UInt64(opening.lines[0].count + 1), hash: lines[1].hash)
        )
        #expect(rotated.tail == .init(seq: 6, end: opening.byteCount, head: lines[1].hash))
        #expect(state.position.fileFirstSeq == 5 && state.position.fileSize == opening.byteCount)
        #expect(state.position.sinceCheckpoint == 0)
    }

    @Test("a rotation whose new file cannot be signed is put off: the chain goes on in the current file, due again")
    func rotationPutOff() throws {
        var state = Self.machine(maxBytes: 100, fileSize: 100)
        _ = state.enqueue(entry(1), at: Self.start)
        #expect(Self.complete(&state, try Self.batch(state.nextBatch(now: Self.start))).written.rotationDue)
        var closing = state.closingBatch()
        state.checkpointSigned(Self.signature, for: &closing, now: Self.start)
        _ = state.written(closing)
        let afterClosing = state.position

        var (opening, _) = state.newFileBatch(now: Self.start)
        state.checkpointSigned(nil, for: &opening, now: Self.start)
        #expect(opening.sealed == nil)
        state.rotationPutOff()
        #expect(state.position == afterClosing)

        _ = state.enqueue(entry(2), at: Self.start)
        let next = try Self.batch(state.nextBatch(now: Self.start))
        #expect(try Self.parsed(next)[0].seq == afterClosing.nextSeq)
        #expect(try Self.parsed(next)[0].prev == afterClosing.head)
        #expect(Self.complete(&state, next).written.rotationDue)
    }

    @Test(
        "a failed write fails exactly the tickets not yet durable (in the batch and queued after it) and every later one; no batch is handed out again"
    )
    func failedWrite() throws {
        var state = Self.machine()
        _ = state.enqueue(entry(1), at: Self.start)
        _ = state.enqueue(entry(2), at: Self.start)
        _ = Self.complete(&state, try Self.batch(state.nextBatch(now: Self.start)))
        _ = state.enqueue(entry(3), at: Self.start)
        _ = state.enqueue(entry(4), at: Self.start)
        let failing = try Self.batch(state.nextBatch(now: Self.start))
        #expect(failing.through == Self.ticket(4))
        _ = state.enqueue(entry(5), at: Self.start)

        state.failed(Self.failure)
        let failed = "failed: \(Self.failure)"
        #expect((1...5).map { Self.outcome(state, $0) } == ["durable", "durable", failed, failed, failed])
        #expect(state.enqueue(entry(6), at: Self.start) == Self.ticket(6))
        #expect(Self.outcome(state, 6) == failed, "a stopped log takes nothing")
        #expect(Self.stopped(state.nextBatch(now: Self.start)) == Self.failure.message)
        #expect(Self.stopped(state.nextBatch(now: Self.start + 1_000)) == Self.failure.message, "and stays stopped")
        // A later failure does not replace the first cause.
        state.failed(AuditError(.io, "cannot sync"))
        #expect(Self.outcome(state, 3) == failed)
    }

    @Test(
        "closing writes what is queued with a final checkpoint, then stops; what is enqueued during the final write is written too; later tickets fail as closed"
    )
    func closing() throws {
        var state = Self.machine()
        _ = state.enqueue(entry(1), at: Self.start)
        _ = state.enqueue(entry(2), at: Self.start)
        state.close()
        let final = try Self.batch(state.nextBatch(now: Self.start))
        #expect(final.final && final.records == 2 && final.checkpoint?.seq == 3, "the checkpoint is due at close")
        _ = state.enqueue(entry(3), at: Self.start)
        #expect(Self.complete(&state, final).durable == Self.ticket(2))

        let late = try Self.batch(state.nextBatch(now: Self.start))
        #expect(late.final && late.through == Self.ticket(3) && late.checkpoint?.seq == 5)
        #expect(Self.complete(&state, late).durable == Self.ticket(3))
        #expect(Self.stopped(state.nextBatch(now: Self.start)) == "the audit log is closed")
        _ = state.enqueue(entry(4), at: Self.start)
        #expect(Self.outcome(state, 3) == "durable" && Self.outcome(state, 4) == "failed: the audit log is closed")
    }

    @Test("closing with nothing queued or unsigned writes nothing and stops")
    func closingIdle() throws {
        var state = Self.machine()
        state.close()
        let final = try Self.batch(state.nextBatch(now: Self.start))
        #expect(final.lines.isEmpty && final.checkpoint == nil && final.through == nil)
        #expect(state.written(final) == .init())
        #expect(Self.stopped(state.nextBatch(now: Self.start)) == "the audit log is closed")
    }

    @Test("the log's own records (retention's removals) settle no ticket and always carry a checkpoint")
    func ownRecords() throws {
        var state = Self.machine()
        _ = state.enqueue(entry(1), at: Self.start)
        var own = state.ownBatch([(entry(99), Self.start)], now: Self.start)
        #expect(own.through == nil && own.records == 0 && own.checkpoint?.seq == 2)
        #expect(try Self.parsed(own).map(\.seq) == [1], "chained on the head, ahead of the queued record")
        state.checkpointSigned(Self.signature, for: &own, now: Self.start)
        _ = state.written(own)
        #expect(state.acknowledged(own) == Self.ticket(0))
        #expect(Self.outcome(state, 1) == "waiting")
        #expect(try Self.parsed(Self.batch(state.nextBatch(now: Self.start)))[0].seq == 3)
    }
}
