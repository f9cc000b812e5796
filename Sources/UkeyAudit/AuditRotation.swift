import Foundation
import Glibc

/// The audit log's rotation (`[audit] max-size`): past the size, the current file is closed with a
/// signed checkpoint and archived as `audit-<first seq>-<last seq>.log`, and a new `audit.log`
/// begins with a `rotated` record that names the archive and chains to its last record (`prev`
/// is the archive's last hash, `seq` follows on), then a checkpoint. Archives are removed only by
/// `AuditRetention`, when a limit is set, and each removal is recorded first; a verifier walks
/// the chain of files (`AuditChainVerifier`).
public enum AuditRotation {
    /// The new file is written complete under this suffix before the renames.
    static let nextSuffix = ".next"

    /// Where the current file's chain starts when it continues an archive.
    public struct Start: Sendable, Hashable {
        /// The archive's last record.
        public var seq: UInt64
        public var head: String
        public var previous: String
    }

    static func archiveName(first: UInt64, last: UInt64) -> String {
        String(format: "audit-%012llu-%012llu.log", first, last)
    }

    public static func isArchiveName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count == 35, name.hasPrefix("audit-"), name.hasSuffix(".log"), bytes[18] == UInt8(ascii: "-") else {
            return false
        }
        return (bytes[6..<18] + bytes[19..<31]).allSatisfy { (48...57).contains($0) }
    }

    /// A rotation cut short by a crash: with the new file complete and the old one already
    /// archived, the new one takes its place; if the old one is still current, the new one goes.
    static func finishInterrupted(path: String) {
        let next = path + nextSuffix
        var info = stat()
        guard lstat(next, &info) == 0 else { return }
        if lstat(path, &info) != 0 && errno == ENOENT {
            if rename(next, path) == 0 { AuditLog.syncDirectory(of: path) }
        } else {
            unlink(next)
        }
    }

    /// The start of the file open on `fd` if its first record is a `rotated` one.
    static func start(of fd: Int32, path: String) throws(AuditError) -> Start? {
        var reader = AuditFileReader(fd: fd, offset: 0)
        guard case .line(let line)? = try reader.next() else { return nil }
        guard let parsed = try? AuditLine.parse(line.bytes), parsed.type == "rotated" else { return nil }
        guard parsed.selfConsistent, let upto = parsed.upto, let head = parsed.head, let previous = parsed.previous,
            parsed.seq == upto + 1, parsed.prev == head
        else {
            throw AuditError(
                .integrity,
                "integrity check failed: the audit log \(path) starts with a rotation record that does not chain to its archive"
            )
        }
        return Start(seq: upto, head: head, previous: previous)
    }

    /// What the daemon sealed before the rotation (the last checkpoint, the last acknowledged
    /// record) may lie in the archive: it must be there, and the archive must end where the
    /// current file's chain starts.
    static func checkPrevious(
        _ start: Start,
        path: String,
        sealed: SealedCheckpoint?,
        acknowledged: AuditTailSeal.State?
    ) throws(AuditError) {
        let sealedThere = sealed.flatMap { $0.seq <= start.seq ? $0 : nil }
        let acknowledgedThere = acknowledged.flatMap { $0.seq <= start.seq ? $0 : nil }
        guard sealedThere != nil || acknowledgedThere != nil else { return }
        let archive = (path as NSString).deletingLastPathComponent + "/" + start.previous
        let fd = open(archive, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw AuditError(
                .integrity,
                "integrity check failed: the archive \(archive), which holds the last sealed records, cannot be opened: \(String(cString: strerror(errno)))"
            )
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw AuditError(.io, "cannot stat \(archive)") }
        let base = sealedThere == nil ? try Self.start(of: fd, path: archive) : nil
        let tail = try AuditLog.readTail(
            fd: fd,
            size: UInt64(info.st_size),
            sealed: sealedThere,
            path: archive,
            watching: acknowledgedThere?.seq,
            base: base
        )
        if let acknowledgedThere { try AuditLog.check(tail, reaches: acknowledgedThere, path: archive) }
        guard tail.lastSeq == start.seq, tail.head == start.head else {
            throw AuditError(
                .integrity,
                "integrity check failed: the archive \(archive) ends at record \(tail.lastSeq), not at record \(start.seq) where \(path) continues it"
            )
        }
    }
}
