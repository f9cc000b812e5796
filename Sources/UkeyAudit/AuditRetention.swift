import Crypto
import Foundation
import Glibc
import UkeyCore

/// How many archives the log keeps (`[audit] keep-archives`, `max-total`). Without a limit
/// ukeyd never removes one; with one, each rotation removes the oldest archives past it, and
/// first records each removal in the log (`archive-removed`: the archive's name, its last
/// record's seq and hash, its size and SHA-256), durably, so a verifier walking the chain of
/// files knows the archive was removed by retention and where its chain ended, and an off-host
/// copy of it can still be matched. The newest archive (the one the current file continues) is
/// never removed.
public struct AuditRetention: Sendable, Hashable {
    public static let removalRecord = "archive-removed"

    /// Keep at most this many archives; nil: any number.
    public var keepArchives: Int?
    /// Keep the archives and the current file within this many bytes; nil: any size.
    public var maxTotalBytes: UInt64?

    public init(keepArchives: Int? = nil, maxTotalBytes: UInt64? = nil) {
        self.keepArchives = keepArchives
        self.maxTotalBytes = maxTotalBytes
    }

    public var limits: Bool { keepArchives != nil || maxTotalBytes != nil }

    /// An archive in the log's directory, by the seqs its name gives.
    public struct Archive: Sendable, Hashable {
        public let name: String
        public let first: UInt64
        public let last: UInt64
        public let bytes: UInt64

        public init(name: String, first: UInt64, last: UInt64, bytes: UInt64) {
            self.name = name
            self.first = first
            self.last = last
            self.bytes = bytes
        }
    }

    /// The archives beside the log at `path`, oldest first.
    public static func archives(besideLog path: String) -> [Archive] {
        let directory = (path as NSString).deletingLastPathComponent
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.compactMap { name -> Archive? in
            guard AuditRotation.isArchiveName(name) else { return nil }
            let bytes = Array(name.utf8)
            guard let first = UInt64(String(decoding: bytes[6..<18], as: UTF8.self)),
                let last = UInt64(String(decoding: bytes[19..<31], as: UTF8.self))
            else { return nil }
            var info = stat()
            guard lstat(directory + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
            return Archive(name: name, first: first, last: last, bytes: UInt64(info.st_size))
        }.sorted { $0.first < $1.first }
    }

    /// Which of `archives` (oldest first) this retention removes, oldest first, with a current
    /// file of `currentBytes`: never the newest.
    public func removals(of archives: [Archive], currentBytes: UInt64) -> [Archive] {
        guard archives.count > 1 else { return [] }
        var kept = archives[...]
        var removed: [Archive] = []
        var total = currentBytes + archives.reduce(0) { $0 + $1.bytes }
        while kept.count > 1 {
            let overCount = keepArchives.map { kept.count > $0 } ?? false
            let overSize = maxTotalBytes.map { total > $0 } ?? false
            guard overCount || overSize, let oldest = kept.first else { break }
            removed.append(oldest)
            total -= oldest.bytes
            kept = kept.dropFirst()
        }
        return removed
    }

    /// The record of `archive`'s removal: `head` is the hash of its last record (the next file's
    /// `rotated` record names it); the file's SHA-256 is taken now.
    func removalEntry(_ archive: Archive, head: String, directory: String) -> AuditEntry {
        var subject: [String: AuditValue] = [
            "archive": .string(archive.name), "first": .int(Int(archive.first)), "upto": .int(Int(archive.last)),
            "head": .string(head), "bytes": .int(Int(archive.bytes)),
            "retention": .string(
                [keepArchives.map { "keep-archives=\($0)" }, maxTotalBytes.map { "max-total=\($0)" }].compactMap { $0 }
                    .joined(separator: ",")
            ),
        ]
        if let digest = Self.sha256(ofFile: directory + "/" + archive.name) { subject["sha256"] = .string(digest) }
        return AuditEntry(type: Self.removalRecord, actor: nil, subject: subject)
    }

    static func sha256(ofFile path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            hasher.update(data: buffer[0..<n])
        }
        return Hex.encode(Array(hasher.finalize()))
    }

    /// The hash of `archive`'s last record, as the file after it states it: the first record
    /// (`rotated`) of the next archive, or of the current file at `path`.
    static func finalHash(of archive: Archive, archives: [Archive], currentPath: String) -> String? {
        let directory = (currentPath as NSString).deletingLastPathComponent
        let successor = archives.first { $0.first == archive.last + 1 }.map { directory + "/" + $0.name } ?? currentPath
        let fd = open(successor, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let start = try? AuditRotation.start(of: fd, path: successor), start.previous == archive.name,
            start.seq == archive.last
        else { return nil }
        return start.head
    }
}
