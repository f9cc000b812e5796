import Crypto
import Foundation
import Testing
import UkeyAudit
import UkeyCore
import UkeyTesting

/// The log is its current file and every archive it continues: archives are inside the integrity
/// check, and retention removes them only with a record that says so.
@Suite("Audit log: the chain of archives, and retention")
struct AuditChainTests {
    static func open(
        _ dir: TemporaryDirectory,
        _ checkpointing: TestCheckpointing,
        retention: AuditRetention = AuditRetention()
    ) throws -> AuditLog {
        var configuration = AuditLog.Configuration(path: dir.path + "/audit.log")
        configuration.checkpointEvery = 50
        configuration.checkpointInterval = 1e9
        configuration.maxBytes = 64 << 10
        configuration.retention = retention
        let seal = try AuditTailSeal(directory: dir.path, key: AuditRotationTests.key)
        return try AuditLog(
            configuration: configuration,
            sealed: checkpointing.sealed,
            checkpointing: checkpointing,
            tailSeal: seal,
            tailSealRequired: checkpointing.sealed != nil,
            problems: { _ in }
        )
    }

    static func verify(_ dir: TemporaryDirectory, _ checkpointing: TestCheckpointing) throws -> AuditChainVerification {
        let path = dir.path + "/audit.log"
        return try AuditChainVerifier.verify(
            current: path,
            archives: AuditChainVerifier.archives(besideLog: path),
            checkpointKey: CheckpointKey(p256: checkpointing.key.publicKey),
            sealed: checkpointing.sealed
        )
    }

    /// A log of 1,500 records, rotated into several archives.
    static func rotatedLog() async throws -> (TemporaryDirectory, TestCheckpointing, [String]) {
        let dir = try TemporaryDirectory()
        let checkpointing = TestCheckpointing()
        let log = try open(dir, checkpointing)
        for n in 1...1500 { try await log.append(entry(n)) }
        await log.close()
        return (dir, checkpointing, try AuditRotationTests.archives(dir))
    }

    @Test("the whole chain verifies, every record counted once; an archive moved away fails as missing, naming it")
    func archiveMissing() async throws {
        let (dir, checkpointing, archives) = try await Self.rotatedLog()
        #expect(archives.count >= 3, "\(archives)")
        let whole = try Self.verify(dir, checkpointing)
        #expect(whole.ok, "\(whole.reason ?? "")")
        #expect(whole.files.count == archives.count + 1 && whole.removedByRetention.isEmpty)
        let records = try (archives + ["audit.log"]).reduce(0) { $0 + (try lines(dir.path + "/" + $1).count) }
        #expect(whole.count == records, "every record of every file, once")

        // The attack: the middle archive moved out of the state directory. Each file still
        // verifies on its own; the chain does not.
        let middle = archives[archives.count / 2]
        #expect(rename(dir.path + "/" + middle, dir.path + "/../" + middle + ".moved") == 0)
        defer { rename(dir.path + "/../" + middle + ".moved", dir.path + "/" + middle) }
        let moved = try Self.verify(dir, checkpointing)
        #expect(
            !moved.ok && moved.reason?.contains("the archive \(middle)") == true
                && moved.reason?.contains("is missing") == true,
            "\(moved.reason ?? "")"
        )
    }

    @Test(
        "an archive cut back to an earlier checkpoint (still a valid log on its own) fails as cut short, naming it; one replaced by another archive fails too"
    )
    func archiveShortened() async throws {
        let (dir, checkpointing, archives) = try await Self.rotatedLog()
        let victim = dir.path + "/" + archives[0]
        let original = try lines(victim)
        // Back to its second checkpoint: every record up to there is intact and signed.
        let checkpoints = original.indices.filter {
            String(decoding: original[$0], as: UTF8.self).contains("\"type\":\"checkpoint\"")
        }
        let cut = try #require(checkpoints.dropFirst().first)
        try write(Array(original.prefix(cut + 1)), to: victim)
        let alone = try AuditVerifier.verify(path: victim, auditKey: checkpointing.key.publicKey)
        #expect(alone.ok, "the cut archive verifies on its own: that is the attack")
        let shortened = try Self.verify(dir, checkpointing)
        #expect(
            !shortened.ok && shortened.reason?.contains("\(archives[0]) is cut short") == true,
            "\(shortened.reason ?? "")"
        )
        try write(original, to: victim)
        #expect(try Self.verify(dir, checkpointing).ok)

        // The second archive's bytes under the first's name: not the records the next file chains to.
        let saved = try Data(contentsOf: URL(fileURLWithPath: victim))
        try FileManager.default.removeItem(atPath: victim)
        try FileManager.default.copyItem(atPath: dir.path + "/" + archives[1], toPath: victim)
        #expect(!(try Self.verify(dir, checkpointing)).ok)
        try saved.write(to: URL(fileURLWithPath: victim))
    }

    @Test(
        "keep-archives: each rotation removes the oldest archives past the limit, after recording each removal (its last record's seq and hash, its SHA-256); the chain verifies and reports them as removed by retention"
    )
    func keepArchives() async throws {
        let dir = try TemporaryDirectory()
        let checkpointing = TestCheckpointing()
        let log = try Self.open(dir, checkpointing, retention: AuditRetention(keepArchives: 2))
        // Before each rotation, note every archive's hash, to check the removal record against.
        var digests: [String: String] = [:]
        for n in 1...2500 {
            try await log.append(entry(n))
            for name in try AuditRotationTests.archives(dir) where digests[name] == nil {
                digests[name] = Hex.encode(
                    Array(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: dir.path + "/" + name))))
                )
            }
        }
        await log.close()
        let kept = try AuditRotationTests.archives(dir)
        #expect(kept.count == 2, "\(kept)")
        let result = try Self.verify(dir, checkpointing)
        #expect(result.ok, "\(result.reason ?? "")")
        #expect(result.removedByRetention.count == 1, "the walk stops at the newest removed archive")
        let removedNames = Set(digests.keys).subtracting(kept)
        #expect(removedNames.count >= 2, "\(digests.keys.sorted())")
        // The removals recorded in the files still here (earlier ones went with files retention
        // removed since): each names a removed archive, with what it was, the newest one among them.
        var removals: [String: [String: Any]] = [:]
        for file in kept + ["audit.log"] {
            for line in try lines(dir.path + "/" + file) {
                guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                    object["type"] as? String == AuditRetention.removalRecord,
                    let subject = object["subject"] as? [String: Any], let name = subject["archive"] as? String
                else { continue }
                removals[name] = subject
            }
        }
        #expect(
            !removals.isEmpty && Set(removals.keys).isSubset(of: removedNames),
            "\(removals.keys.sorted()) vs \(removedNames.sorted())"
        )
        #expect(removedNames.max().map { removals[$0] != nil } == true, "the newest removed archive's record is kept")
        for (name, subject) in removals {
            #expect(subject["sha256"] as? String == digests[name], "\(name)'s recorded hash is its bytes'")
            #expect(subject["retention"] as? String == "keep-archives=2")
        }
        #expect(result.removedByRetention.first.map { removedNames.contains($0.name) } == true)
        #expect(result.removedByRetention.first?.head.count == 64)

        // An archive that retention kept, moved away: missing, even with removals recorded before it.
        let newest = try #require(kept.last)
        #expect(rename(dir.path + "/" + newest, dir.path + "/../" + newest + ".moved") == 0)
        let moved = try Self.verify(dir, checkpointing)
        #expect(
            !moved.ok && moved.reason?.contains("\(newest)") == true && moved.reason?.contains("is missing") == true,
            "\(moved.reason ?? "")"
        )
        rename(dir.path + "/../" + newest + ".moved", dir.path + "/" + newest)
    }

    @Test(
        "max-total keeps the archives and the current file within the size, never removing the newest archive; the choice is oldest first"
    )
    func maxTotal() throws {
        var archives: [AuditRetention.Archive] = []
        for n in 0..<5 {
            let first = UInt64(n) * 100 + 1
            archives.append(AuditRetention.Archive(name: "a\(n)", first: first, last: first + 99, bytes: 100))
        }
        #expect(
            AuditRetention(maxTotalBytes: 350).removals(of: archives, currentBytes: 50).map(\.name) == ["a0", "a1"]
        )
        #expect(
            AuditRetention(maxTotalBytes: 10).removals(of: archives, currentBytes: 50).map(\.name) == [
                "a0", "a1", "a2", "a3",
            ]
        )
        #expect(AuditRetention(keepArchives: 3).removals(of: archives, currentBytes: 50).map(\.name) == ["a0", "a1"])
        #expect(
            AuditRetention(keepArchives: 3, maxTotalBytes: 260).removals(of: archives, currentBytes: 50).map(\.name)
                == ["a0", "a1", "a2"]
        )
        #expect(AuditRetention().removals(of: archives, currentBytes: 1 << 40).isEmpty)
    }
}
