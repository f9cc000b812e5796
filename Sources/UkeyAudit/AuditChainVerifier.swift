import Foundation

/// The outcome of verifying a whole log: the current file and the archives it continues.
public struct AuditChainVerification: Sendable, Hashable {
    public var ok: Bool { firstBad == nil }
    /// Records read in every file, and signed checkpoints among them.
    public var count = 0
    public var checkpoints = 0
    /// Records after the current file's last checkpoint.
    public var unsignedTail = 0
    /// The files verified, newest first (the current file, then its archives).
    public var files: [String] = []
    /// Archives removed by retention, newest first, as their removal records state them.
    public var removedByRetention: [Removed] = []
    public var firstBad: UInt64?
    public var reason: String?

    public struct Removed: Sendable, Hashable {
        public var name: String
        public var upto: UInt64
        public var head: String
        /// The seq of the `archive-removed` record.
        public var recordedAt: UInt64
    }
}

/// Walks the chain of files back from the current one. Each file after a rotation names its
/// archive and the archive's last record (seq and hash): that archive must be there, verify on
/// its own, and end exactly there; otherwise the log is not whole: an archive moved away fails
/// as missing, one cut back to an earlier checkpoint fails as cut short, naming it. An archive
/// that retention removed is no failure when a later file records its removal with the same last
/// record (`archive-removed`): the walk reports it and stops there.
public enum AuditChainVerifier {
    /// - Parameters:
    ///   - path: the current file.
    ///   - archives: the archives at hand, by their names (`audit-FIRST-LAST.log`).
    public static func verify(
        current path: String,
        archives: [String: String],
        checkpointKey: CheckpointKey?,
        sealed: SealedCheckpoint? = nil
    ) throws(AuditError) -> AuditChainVerification {
        var result = AuditChainVerification()
        var file = try AuditVerifier.verify(
            path: path,
            checkpointKey: checkpointKey,
            sealed: sealed.flatMap { $0.seq >= AuditVerifier.firstSeq(path) ?? 1 ? $0 : nil }
        )
        result.unsignedTail = file.unsignedTail
        var name = path
        var removed: [String: AuditVerification.RemovedArchive] = [:]
        while true {
            result.count += file.count
            result.checkpoints += file.checkpoints
            result.files.append(name)
            guard file.ok else {
                result.firstBad = file.firstBad
                result.reason = "\(name): \(file.reason ?? "not verified")"
                return result
            }
            removed.merge(file.removedArchives) { newer, _ in newer }
            guard let archive = file.continues, let head = file.continuesHead else { return result }
            let upto = file.firstSeq - 1
            guard let archivePath = archives[archive] else {
                if let removal = removed[archive], removal.upto == upto, removal.head == head {
                    result.removedByRetention.append(
                        .init(name: archive, upto: upto, head: head, recordedAt: removal.recordedAt)
                    )
                    return result
                }
                result.firstBad = upto
                result.reason =
                    "the archive \(archive) (records up to \(upto)), which \(name) continues, is missing, and no archive-removed record says retention removed it"
                return result
            }
            let inArchive = sealed.flatMap { $0.seq <= upto ? $0 : nil }
            let next = try AuditVerifier.verify(path: archivePath, checkpointKey: checkpointKey, sealed: inArchive)
            if next.ok {
                if next.lastSeq < upto {
                    result.files.append(archivePath)
                    result.firstBad = next.lastSeq + 1
                    result.reason =
                        "the archive \(archivePath) is cut short: it ends at record \(next.lastSeq), but \(name) continues it from record \(upto)"
                    return result
                }
                if next.lastSeq > upto || next.lastHash != head {
                    result.files.append(archivePath)
                    result.firstBad = upto
                    result.reason =
                        "the archive \(archivePath) does not end with the record \(upto) that \(name) chains to"
                    return result
                }
            }
            file = next
            name = archivePath
        }
    }

    /// The archives beside the log at `path` (its directory), by name.
    public static func archives(besideLog path: String) -> [String: String] {
        let directory = (path as NSString).deletingLastPathComponent
        var out: [String: String] = [:]
        for archive in AuditRetention.archives(besideLog: path) { out[archive.name] = directory + "/" + archive.name }
        return out
    }
}
