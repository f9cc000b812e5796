import Foundation
import Glibc
import UkeyCore

/// Opening the log: what a crash or an attacker may have left in the file, checked against the
/// checkpoint sealed in the token and the tail seal, and where the chain continues.
extension AuditLog {
    /// The log as found at open, checked; the file open for appending.
    struct Opened {
        var fd: Int32
        var tail: Tail
        var firstSeq: UInt64
        var recovery: Recovery
    }

    /// Opens (or creates) the log, checks it against the sealed checkpoint and the tail seal, and
    /// drops a record cut short by a crash. `tailSealRequired`: the seal's key was in use before,
    /// so the seal file must hold a valid seal (an empty one was removed); otherwise a first seal
    /// is written.
    static func recover(
        path: String,
        sealed: SealedCheckpoint?,
        tailSeal: AuditTailSeal?,
        tailSealRequired: Bool
    ) throws(AuditError) -> Opened {
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
        return Opened(
            fd: fd,
            tail: tail,
            firstSeq: firstSeq,
            recovery: Recovery(records: tail.lastSeq, droppedPartialBytes: Int(UInt64(info.st_size) - tail.validEnd))
        )
    }

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
