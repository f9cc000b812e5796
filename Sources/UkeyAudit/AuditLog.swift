import Foundation
import Glibc
import UkeyCore

/// The append-only audit log at `STATE/audit.log` (architecture.md section 6).
///
/// Appends are group-committed: callers enqueue records (cheap, in order) and one writer thread
/// numbers, chains, writes and fsyncs everything queued since its last pass, then wakes every
/// caller whose record is now durable. A caller replies to its client only after `durable`, so
/// an acknowledged call's record survives kill -9. Every `checkpointEvery` records or
/// `checkpointInterval` seconds the writer adds a checkpoint signed by the audit key and seals
/// its position, so records cut off the end are detected too.
///
/// If a write or fsync fails, the log stops taking records and every waiter gets the error:
/// callers must then fail their call rather than act unrecorded.
public final class AuditLog: @unchecked Sendable {
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
        /// Called on the writer's thread with each batch of lines once they are durable, in log
        /// order: off-host forwarding (`AuditForwarder`). It must not block: it hands the lines on.
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
    private let checkpointing: any AuditCheckpointing
    /// Sealed after every batch, before any of its records is acknowledged.
    private let tailSeal: AuditTailSeal?
    private let problems: @Sendable (String) -> Void
    private let condition = NSCondition()
    /// The current file. Written by the writer thread alone; swapped, under `condition`, only by
    /// a rotation. Readers take a duplicate under `condition`, so a swap never pulls a
    /// descriptor from under them.
    private var fd: Int32
    /// Which file `fd` is (1, 2, ... as rotations happen), and the seq of its first record.
    private var fileGeneration: UInt64 = 1
    private var fileFirstSeq: UInt64 = 1

    // Guarded by `condition`.
    private var queue: [(entry: AuditEntry, time: Date)] = []
    private var enqueued: UInt64 = 0
    private var durableThrough: UInt64 = 0
    private var waiters: [(ticket: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var failure: AuditError?
    private var closing = false
    private var followers: [UInt64: AsyncStream<Void>.Continuation] = [:]
    private var updateWaiters: [UInt64: (after: UInt64, continuation: CheckedContinuation<Void, Never>)] = [:]
    private var nextFollower: UInt64 = 0
    private var lastDurableSeq: UInt64
    private var writes = 0
    private var stopped = false
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []

    // Owned by the writer thread.
    private var nextSeq: UInt64
    private var head: String
    private var fileSize: UInt64
    private var sinceCheckpoint: Int
    private var lastCheckpoint = Date()

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
        self.configuration = configuration
        self.checkpointing = checkpointing
        self.tailSeal = tailSeal
        self.problems = problems
        let path = configuration.path
        AuditRotation.finishInterrupted(path: path)
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw AuditError(.io, "cannot open the audit log \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            Glibc.close(fd)
            throw AuditError(.io, "cannot stat the audit log \(path)")
        }
        guard info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
            Glibc.close(fd)
            throw AuditError(
                .integrity,
                "the audit log \(path) must be owned by uid \(geteuid()) with mode 0600 (found uid \(info.st_uid), mode \(String(info.st_mode & 0o7777, radix: 8)))"
            )
        }
        if info.st_size == 0 && sealed == nil { Self.syncDirectory(of: path) }
        let tail: Tail
        var acknowledged: AuditTailSeal.State?
        var firstSeq: UInt64 = 1
        do throws(AuditError) {
            // Without a key from before, whatever the seal file holds is not ours to trust or
            // refuse: it is overwritten by the first seal below.
            acknowledged = tailSealRequired ? try tailSeal?.read() : nil
            if acknowledged == nil && tailSealRequired, let tailSeal {
                throw AuditError(
                    .integrity,
                    "integrity check failed: \(tailSeal.path) is empty or missing, though the log's tail was sealed before: the acknowledged end of the log cannot be checked"
                )
            }
            // A file that a rotation began continues the one before it (`AuditRotation`).
            let start = try AuditRotation.start(of: fd, path: path)
            if let start {
                firstSeq = start.seq + 1
                // What the daemon sealed may lie in the file before this one: check it there.
                try AuditRotation.checkPrevious(start, path: path, sealed: sealed, acknowledged: acknowledged)
            }
            let sealedHere = sealed.flatMap { $0.seq >= firstSeq ? $0 : nil }
            tail = try Self.readTail(
                fd: fd,
                size: UInt64(info.st_size),
                sealed: sealedHere,
                path: path,
                watching: acknowledged?.seq,
                base: start
            )
            if let acknowledged, acknowledged.seq >= firstSeq {
                try Self.check(tail, reaches: acknowledged, path: path)
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        if tail.validEnd < UInt64(info.st_size) {
            // A record cut short by a crash was never acknowledged: drop it so the chain continues.
            guard ftruncate(fd, off_t(tail.validEnd)) == 0, fsync(fd) == 0 else {
                Glibc.close(fd)
                throw AuditError(.io, "cannot remove the partial last record of \(path)")
            }
        }
        if let tailSeal, acknowledged == nil {
            // The first seal, at once: a key with no seal behind it would read as a removed seal.
            do throws(AuditError) {
                try tailSeal.write(.init(seq: tail.lastSeq, end: tail.validEnd, head: tail.head))
            } catch {
                Glibc.close(fd)
                throw error
            }
        }
        self.fd = fd
        self.fileFirstSeq = firstSeq
        self.nextSeq = tail.lastSeq + 1
        self.lastDurableSeq = tail.lastSeq
        self.head = tail.head
        self.fileSize = tail.validEnd
        self.sinceCheckpoint = tail.sinceCheckpoint
        self.recovery = Recovery(records: tail.lastSeq, droppedPartialBytes: Int(UInt64(info.st_size) - tail.validEnd))
        let thread = Thread { [self] in writerLoop() }
        thread.name = "ukey-audit-writer"
        thread.start()
    }

    deinit { Glibc.close(fd) }

    // MARK: appending

    /// Queues a record; cheap and ordered. Call `durable` before acknowledging the call.
    public func enqueue(_ entry: AuditEntry) -> Ticket {
        condition.lock()
        defer { condition.unlock() }
        queue.append((entry, Date()))
        enqueued += 1
        condition.signal()
        return Ticket(value: enqueued)
    }

    /// Returns once the ticket's record is on disk; throws if the log failed.
    public func durable(_ ticket: Ticket) async throws(AuditError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                condition.lock()
                if durableThrough >= ticket.value {
                    condition.unlock()
                    continuation.resume()
                } else if let failure {
                    condition.unlock()
                    continuation.resume(throwing: failure)
                } else {
                    waiters.append((ticket.value, continuation))
                    condition.unlock()
                }
            }
        } catch {
            throw (error as? AuditError) ?? AuditError(.io, "\(error)")
        }
    }

    /// Enqueues and waits until durable.
    public func append(_ entry: AuditEntry) async throws(AuditError) {
        try await durable(enqueue(entry))
    }

    /// The last record on disk.
    public var lastSeq: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return lastDurableSeq
    }

    /// Write passes (each one write and one fsync) so far: fewer than records under load.
    public var batches: Int {
        condition.lock()
        defer { condition.unlock() }
        return writes
    }

    /// Wakes (coalesced) after each batch reaches the disk, until `cancel` or close.
    public func follow() -> (updates: AsyncStream<Void>, cancel: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        condition.lock()
        let id = nextFollower
        nextFollower += 1
        if closing { continuation.finish() } else { followers[id] = continuation }
        condition.unlock()
        return (
            stream,
            { [weak self] in
                guard let self else { return }
                condition.lock()
                let removed = followers.removeValue(forKey: id)
                condition.unlock()
                removed?.finish()
            }
        )
    }

    /// Returns once a record after `seq` is durable, the log stops, or the task is cancelled: a
    /// follower sleeps here instead of polling the file.
    public func waitForRecords(after seq: UInt64) async {
        let id = condition.withLock { () -> UInt64 in
            nextFollower += 1
            return nextFollower
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                condition.lock()
                if lastDurableSeq > seq || stopped || Task.isCancelled {
                    condition.unlock()
                    continuation.resume()
                } else {
                    updateWaiters[id] = (seq, continuation)
                    condition.unlock()
                }
            }
        } onCancel: {
            let waiter = condition.withLock { updateWaiters.removeValue(forKey: id) }
            waiter?.continuation.resume()
        }
    }

    /// Writes what is queued plus a final checkpoint, and stops the writer. Later appends fail.
    /// Async, never blocking a thread: the final checkpoint needs the token, on the shared pool.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            closing = true
            condition.signal()
            if stopped {
                condition.unlock()
                continuation.resume()
            } else {
                closeWaiters.append(continuation)
                condition.unlock()
            }
        }
    }

    // MARK: the writer thread

    private func writerLoop() {
        while true {
            condition.lock()
            while queue.isEmpty && !closing && !(sinceCheckpoint > 0 && checkpointDueByTime) {
                if sinceCheckpoint > 0 {
                    _ = condition.wait(until: lastCheckpoint.addingTimeInterval(configuration.checkpointInterval))
                } else {
                    condition.wait()
                }
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            let through = enqueued
            let last = closing
            condition.unlock()

            let result = writeBatch(batch, finalCheckpoint: last)
            condition.lock()
            var ready: [CheckedContinuation<Void, any Error>] = []
            var failed: [CheckedContinuation<Void, any Error>] = []
            switch result {
            case .success:
                if !batch.isEmpty { writes += 1 }
                durableThrough = through
                lastDurableSeq = nextSeq - 1
                waiters.removeAll { waiter in
                    guard waiter.ticket <= through else { return false }
                    ready.append(waiter.continuation)
                    return true
                }
            case .failure(let error):
                failure = error
                failed = waiters.map(\.continuation)
                waiters.removeAll()
                closing = true
            }
            let wake = Array(followers.values)
            var updated: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in updateWaiters where waiter.after < lastDurableSeq {
                updated.append(waiter.continuation)
                updateWaiters[id] = nil
            }
            let exit = closing && queue.isEmpty
            if exit {
                // Anyone who enqueued after the last pass gets the failure, never a silent drop.
                failure = failure ?? AuditError(.io, "the audit log is closed")
                failed += waiters.map(\.continuation)
                waiters.removeAll()
                followers.removeAll()
                updated += updateWaiters.values.map(\.continuation)
                updateWaiters.removeAll()
                stopped = true
            }
            let closed = exit ? closeWaiters : []
            if exit { closeWaiters.removeAll() }
            condition.unlock()
            ready.forEach { $0.resume() }
            updated.forEach { $0.resume() }
            if case .failure(let error) = result {
                problems("the audit log failed and takes no more records: \(error)")
            }
            failed.forEach { $0.resume(throwing: failure ?? AuditError(.io, "the audit log is closed")) }
            for follower in wake {
                follower.yield()
                if exit { follower.finish() }
            }
            if exit {
                closed.forEach { $0.resume() }
                return
            }
        }
    }

    private var checkpointDueByTime: Bool {
        Date().timeIntervalSince(lastCheckpoint) >= configuration.checkpointInterval
    }

    private func writeBatch(
        _ batch: [(entry: AuditEntry, time: Date)],
        finalCheckpoint: Bool
    ) -> Result<Void, AuditError> {
        var bytes: [UInt8] = []
        var lines: [[UInt8]] = []
        for (entry, time) in batch {
            let (line, hash) = AuditLine.encode(seq: nextSeq, time: time, entry: entry, prev: head)
            if configuration.durable != nil { lines.append(line) }
            bytes += line
            bytes.append(0x0A)
            nextSeq += 1
            head = hash
            sinceCheckpoint += 1
        }
        var sealed: SealedCheckpoint?
        if sinceCheckpoint > 0
            && (sinceCheckpoint >= configuration.checkpointEvery || checkpointDueByTime || finalCheckpoint)
        {
            if let (line, hash) = signedCheckpoint() {
                sealed = SealedCheckpoint(seq: nextSeq, offset: fileSize + UInt64(bytes.count), hash: hash)
                if configuration.durable != nil { lines.append(line) }
                bytes += line
                bytes.append(0x0A)
                nextSeq += 1
                head = hash
                sinceCheckpoint = 0
            }
            lastCheckpoint = Date()
        }
        guard !bytes.isEmpty else { return .success(()) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes {
                configuration.fileIO.write(fd, $0.baseAddress! + written, bytes.count - written)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                return .failure(
                    AuditError(
                        .io,
                        "cannot write the audit log \(configuration.path): \(String(cString: strerror(errno)))"
                    )
                )
            }
            written += n
        }
        guard configuration.fileIO.sync(fd) == 0 else {
            return .failure(
                AuditError(.io, "cannot sync the audit log \(configuration.path): \(String(cString: strerror(errno)))")
            )
        }
        fileSize += UInt64(bytes.count)
        configuration.durable?(lines)
        if let tailSeal {
            do throws(AuditError) {
                try tailSeal.write(.init(seq: nextSeq - 1, end: fileSize, head: head))
            } catch {
                return .failure(error)
            }
        }
        if let sealed { blocking { try await self.checkpointing.sealCheckpoint(sealed) } }
        if let maxBytes = configuration.maxBytes, fileSize >= maxBytes { return rotate() }
        return .success(())
    }

    /// Writes `lines` to the current file and syncs it.
    private func append(_ bytes: [UInt8], to fd: Int32, path: String) -> AuditError? {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes {
                configuration.fileIO.write(fd, $0.baseAddress! + written, bytes.count - written)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return AuditError(.io, "cannot write \(path): \(String(cString: strerror(errno)))") }
            written += n
        }
        guard configuration.fileIO.sync(fd) == 0 else {
            return AuditError(.io, "cannot sync \(path): \(String(cString: strerror(errno)))")
        }
        return nil
    }

    /// Closes the current file with a signed checkpoint, archives it as
    /// `audit-<first>-<last>.log`, and continues in a new `audit.log` whose first record
    /// (`rotated`) names the archive and chains to its last record, followed by a checkpoint.
    /// The new file is complete before either rename, so a crash leaves the old file current,
    /// or both files in place (`AuditRotation.finishInterrupted` completes the second rename).
    /// If the token cannot sign now, the rotation waits for a later batch.
    private func rotate() -> Result<Void, AuditError> {
        let path = configuration.path
        guard let (closing, closingHash) = signedCheckpoint() else { return .success(()) }
        if let error = append(closing + [0x0A], to: fd, path: path) { return .failure(error) }
        configuration.durable?([closing])
        let closingOffset = fileSize
        fileSize += UInt64(closing.count + 1)
        nextSeq += 1
        head = closingHash
        sinceCheckpoint = 0
        blocking {
            try await self.checkpointing.sealCheckpoint(
                SealedCheckpoint(seq: self.nextSeq - 1, offset: closingOffset, hash: closingHash)
            )
        }

        let archive = AuditRotation.archiveName(first: fileFirstSeq, last: nextSeq - 1)
        let rotated = AuditEntry(
            type: "rotated",
            actor: nil,
            subject: ["previous": .string(archive), "upto": .int(Int(nextSeq - 1)), "head": .string(head)]
        )
        let (rotatedLine, rotatedHash) = AuditLine.encode(seq: nextSeq, time: Date(), entry: rotated, prev: head)
        let newFirst = nextSeq
        let savedHead = head
        nextSeq += 1
        head = rotatedHash
        guard let (checkpoint, checkpointHash) = signedCheckpoint() else {
            nextSeq = newFirst
            head = savedHead
            return .success(())
        }
        let nextPath = path + AuditRotation.nextSuffix
        unlink(nextPath)
        let newFD = open(nextPath, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard newFD >= 0 else {
            return .failure(AuditError(.io, "cannot create \(nextPath): \(String(cString: strerror(errno)))"))
        }
        let bytes = rotatedLine + [0x0A] + checkpoint + [0x0A]
        if let error = append(bytes, to: newFD, path: nextPath) {
            Glibc.close(newFD)
            return .failure(error)
        }
        let directory = (path as NSString).deletingLastPathComponent
        guard rename(path, directory + "/" + archive) == 0, rename(nextPath, path) == 0 else {
            Glibc.close(newFD)
            return .failure(AuditError(.io, "cannot rotate the audit log \(path): \(String(cString: strerror(errno)))"))
        }
        Self.syncDirectory(of: path)
        configuration.durable?([rotatedLine, checkpoint])
        let old = condition.withLock { () -> Int32 in
            let old = fd
            fd = newFD
            fileGeneration += 1
            fileFirstSeq = newFirst
            return old
        }
        Glibc.close(old)
        nextSeq += 1
        head = checkpointHash
        let checkpointOffset = UInt64(rotatedLine.count + 1)
        fileSize = UInt64(bytes.count)
        blocking {
            try await self.checkpointing.sealCheckpoint(
                SealedCheckpoint(seq: self.nextSeq - 1, offset: checkpointOffset, hash: checkpointHash)
            )
        }
        if let tailSeal {
            do throws(AuditError) {
                try tailSeal.write(.init(seq: nextSeq - 1, end: fileSize, head: head))
            } catch {
                return .failure(error)
            }
        }
        lastCheckpoint = Date()
        return applyRetention()
    }

    /// After a rotation: the archives past `[audit] keep-archives` or `max-total`, oldest first,
    /// each recorded (`archive-removed`, durable with a checkpoint) before it is unlinked. An
    /// archive whose last record the file after it does not name is kept, and so is every newer one.
    private func applyRetention() -> Result<Void, AuditError> {
        let retention = configuration.retention
        guard retention.limits else { return .success(()) }
        let archives = AuditRetention.archives(besideLog: configuration.path)
        let directory = (configuration.path as NSString).deletingLastPathComponent
        var entries: [(entry: AuditEntry, time: Date)] = []
        var removed: [AuditRetention.Archive] = []
        for archive in retention.removals(of: archives, currentBytes: fileSize) {
            guard let head = AuditRetention.finalHash(of: archive, archives: archives, currentPath: configuration.path)
            else {
                problems(
                    "audit retention keeps \(archive.name) and the archives after it: the file after it does not name its last record"
                )
                break
            }
            entries.append((retention.removalEntry(archive, head: head, directory: directory), Date()))
            removed.append(archive)
        }
        guard !entries.isEmpty else { return .success(()) }
        if case .failure(let error) = writeBatch(entries, finalCheckpoint: true) { return .failure(error) }
        for archive in removed { unlink(directory + "/" + archive.name) }
        Self.syncDirectory(of: configuration.path)
        return .success(())
    }

    /// A checkpoint line over the current head, or nil (reported) if the token cannot sign now.
    private func signedCheckpoint() -> (line: [UInt8], hash: String)? {
        let seq = nextSeq
        let prev = head
        let message = AuditLine.checkpointMessage(seq: seq, head: prev)
        guard let signature = blocking({ try await self.checkpointing.signCheckpoint(message) }) else { return nil }
        let entry = AuditEntry(
            type: "checkpoint",
            actor: nil,
            subject: [
                "upto": .int(Int(seq - 1)), "head": .string(prev), "alg": .string(checkpointing.signatureAlgorithm),
            ]
        )
        return AuditLine.encode(seq: seq, time: Date(), entry: entry, prev: prev, signature: signature)
    }

    /// Runs async token work from the writer thread (a plain thread, so blocking it is fine).
    private func blocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) -> T? {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        Task {
            do { box.value = .success(try await work()) } catch { box.value = .failure(error) }
            done.signal()
        }
        done.wait()
        switch box.value {
        case .success(let value)?: return value
        case .failure(let error)?:
            problems("audit checkpoint: \(error)")
            return nil
        case nil: return nil
        }
    }

    // MARK: reading

    /// Where a reader of the log stands: the next record's `seq` and the byte it starts at. A
    /// follower keeps one, so each look at the log reads only what was added since.
    public struct Cursor: Sendable, Hashable {
        public internal(set) var seq: UInt64
        var offset: UInt64
        /// The file the offset is in; 0: none yet (start at the current file's first record).
        var file: UInt64 = 0
        /// The start of the log (of its current file, after a rotation).
        public static let start = Cursor(seq: 1, offset: 0)
    }

    /// Durable records with `seq >= since`, at most `limit`, as their lines.
    public func records(since: UInt64, limit: Int) throws(AuditError) -> [(seq: UInt64, line: [UInt8])] {
        try records(from: .start, since: since, limit: limit).records
    }

    /// Durable records with `seq >= since`, at most `limit`, read from `cursor` on (which must be
    /// at or before `since`), and the cursor after the last record read.
    public func records(
        from cursor: Cursor,
        since: UInt64,
        limit: Int
    ) throws(AuditError) -> (records: [(seq: UInt64, line: [UInt8])], cursor: Cursor) {
        let (last, fd, generation, firstSeq) = condition.withLock {
            (lastDurableSeq, dup(self.fd), fileGeneration, fileFirstSeq)
        }
        guard fd >= 0 else { throw AuditError(.io, "cannot read the audit log: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        // A cursor into a file rotated away (or none yet) starts at the current file's first record.
        let position0 = cursor.file == generation ? cursor : Cursor(seq: firstSeq, offset: 0, file: generation)
        var reader = AuditFileReader(fd: fd, offset: position0.offset)
        var out: [(seq: UInt64, line: [UInt8])] = []
        var position = position0
        while out.count < limit, position.seq <= last, let item = try reader.next() {
            guard case .line(let line) = item else { break }
            if position.seq >= since { out.append((position.seq, line.bytes)) }
            position = Cursor(
                seq: position.seq + 1,
                offset: line.offset + UInt64(line.bytes.count) + 1,
                file: generation
            )
        }
        return (out, position)
    }

    // MARK: opening

    struct Tail {
        var lastSeq: UInt64
        var head: String
        var validEnd: UInt64
        var sinceCheckpoint: Int
        /// The hash of the record `readTail` was asked to watch, if the log holds it past the
        /// sealed checkpoint.
        var watchedHash: String?
    }

    /// The log must hold the last acknowledged record, as it was acknowledged.
    static func check(_ tail: Tail, reaches acknowledged: AuditTailSeal.State, path: String) throws(AuditError) {
        guard tail.lastSeq >= acknowledged.seq else {
            let missing =
                tail.lastSeq + 1 == acknowledged.seq
                ? "record \(acknowledged.seq) is" : "records \(tail.lastSeq + 1)-\(acknowledged.seq) are"
            throw AuditError(
                .integrity,
                "integrity check failed: \(missing) missing from the audit log \(path): it ends at record \(tail.lastSeq), but record \(acknowledged.seq) was acknowledged (sealed in \(AuditTailSeal.fileName)); the end of the log was cut"
            )
        }
        if let hash = tail.watchedHash, hash != acknowledged.head {
            throw AuditError(
                .integrity,
                "integrity check failed: record \(acknowledged.seq) of the audit log \(path) is not the record that was acknowledged (its hash differs from the seal's)"
            )
        }
    }

    /// Reads from the sealed checkpoint (or the start) to the end, checking the chain, and finds
    /// where the last complete record ends.
    static func readTail(
        fd: Int32,
        size: UInt64,
        sealed: SealedCheckpoint?,
        path: String,
        watching: UInt64? = nil,
        base: AuditRotation.Start? = nil
    ) throws(AuditError) -> Tail {
        if let sealed, size < sealed.offset {
            throw AuditError(
                .integrity,
                "integrity check failed: the audit log \(path) is \(size) bytes, but sealed checkpoint \(sealed.seq) lies at byte \(sealed.offset): records were cut off the end"
            )
        }
        var reader = AuditFileReader(fd: fd, offset: sealed?.offset ?? 0)
        var tail = Tail(
            lastSeq: base?.seq ?? 0,
            head: base?.head ?? AuditLine.genesis,
            validEnd: sealed?.offset ?? 0,
            sinceCheckpoint: 0
        )
        var first = true
        scan: while let item = try reader.next() {
            let line: AuditFileReader.Line
            switch item {
            case .line(let l): line = l
            case .partial: break scan
            case .oversized(let offset):
                throw AuditError(
                    .integrity,
                    "integrity check failed: the audit log \(path) has garbage at byte \(offset)"
                )
            }
            let parsed: AuditLine.Parsed
            do {
                parsed = try AuditLine.parse(line.bytes)
            } catch {
                throw AuditError(
                    .integrity,
                    "integrity check failed: the audit log \(path) has a bad record at byte \(line.offset): \(error)"
                )
            }
            if first, let sealed {
                guard parsed.seq == sealed.seq, parsed.hash == sealed.hash, parsed.selfConsistent else {
                    throw AuditError(
                        .integrity,
                        "integrity check failed: the audit log \(path) does not hold sealed checkpoint \(sealed.seq) at byte \(sealed.offset)"
                    )
                }
            } else {
                guard parsed.selfConsistent, parsed.seq == tail.lastSeq + 1, parsed.prev == tail.head else {
                    throw AuditError(
                        .integrity,
                        "integrity check failed: the audit log \(path) breaks its chain at record \(tail.lastSeq + 1) (byte \(line.offset)); run `ukeyctl audit verify` for details"
                    )
                }
            }
            first = false
            tail.lastSeq = parsed.seq
            tail.head = parsed.hash
            if parsed.seq == watching { tail.watchedHash = parsed.hash }
            tail.validEnd = line.offset + UInt64(line.bytes.count) + 1
            tail.sinceCheckpoint = parsed.type == "checkpoint" ? 0 : tail.sinceCheckpoint + 1
        }
        if let sealed, first {
            throw AuditError(
                .integrity,
                "integrity check failed: the audit log \(path) does not hold sealed checkpoint \(sealed.seq)"
            )
        }
        return tail
    }

    static func syncDirectory(of path: String) {
        let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            fsync(dir)
            Glibc.close(dir)
        }
    }
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    var value: Result<T, any Error>?
}
