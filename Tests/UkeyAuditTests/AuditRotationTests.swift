import Crypto
import Foundation
import Testing
import UkeyAudit
import UkeyCore
import UkeyTesting

/// The review's finding: nothing bounded the audit log's size. Past `max-size` it is archived and
/// a new file continues its chain; nothing is lost, and each file verifies on its own.
@Suite("Audit log: rotation keeps the chain")
struct AuditRotationTests {
    static let key = Array(repeating: UInt8(9), count: 32)

    static func open(_ dir: TemporaryDirectory, _ checkpointing: TestCheckpointing, required: Bool) throws -> AuditLog {
        var configuration = AuditLog.Configuration(path: dir.path + "/audit.log")
        configuration.checkpointEvery = 1000
        configuration.checkpointInterval = 1e9
        configuration.maxBytes = 64 << 10
        let seal = try AuditTailSeal(directory: dir.path, key: key)
        return try AuditLog(
            configuration: configuration,
            sealed: checkpointing.sealed,
            checkpointing: checkpointing,
            tailSeal: seal,
            tailSealRequired: required,
            problems: { _ in }
        )
    }

    static func archives(_ dir: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("audit-") }.sorted()
    }

    @Test(
        "1,500 records past a 64 KiB cap: archives and the current file each verify, chain to each other, and hold every record once"
    )
    func rotationKeepsEveryRecord() async throws {
        let dir = try TemporaryDirectory()
        let checkpointing = TestCheckpointing()
        let log = try Self.open(dir, checkpointing, required: false)
        for n in 1...1500 { try await log.append(entry(n)) }
        let archives = try Self.archives(dir)
        #expect(archives.count >= 3, "\(archives)")
        var expectedFirst: UInt64 = 1
        var previous: String?
        var seen = Set<String>()
        for file in archives + ["audit.log"] {
            let result = try AuditVerifier.verify(path: dir.path + "/" + file, auditKey: checkpointing.key.publicKey)
            #expect(result.ok, "\(file): \(result.reason ?? "")")
            #expect(
                result.firstSeq == expectedFirst && result.continues == previous,
                "\(file) starts at \(result.firstSeq), continues \(result.continues ?? "-")"
            )
            expectedFirst = result.firstSeq + UInt64(result.count)
            previous = file
            for line in try lines(dir.path + "/" + file) {
                let text = String(decoding: line, as: UTF8.self)
                if let range = text.range(of: "/usr/bin/tool-") {
                    seen.insert(String(text[range.upperBound...].prefix { $0 != "\"" }))
                }
            }
        }
        #expect(seen.count == 1500, "every record is in exactly one file")
        #expect(
            archives.allSatisfy { file in
                ((try? FileManager.default.attributesOfItem(atPath: dir.path + "/" + file)[.size] as? Int) ?? 0) < 80
                    << 10
            }
        )
        // Reopening continues after the last record, in the current file.
        let reopened = try Self.open(dir, checkpointing, required: true)
        #expect(reopened.lastSeq == log.lastSeq)
        // A query from the start reads the current file, numbered as the chain numbers it.
        let first = try reopened.records(since: 1, limit: 1).first
        #expect(first?.seq == AuditVerifier.firstSeq(dir.path + "/audit.log"))
    }

    @Test(
        "a crash between the two renames of a rotation is finished at the next open; a current file cut below its sealed checkpoint is refused"
    )
    func interruptedRotation() async throws {
        let dir = try TemporaryDirectory()
        let checkpointing = TestCheckpointing()
        let log = try Self.open(dir, checkpointing, required: false)
        for n in 1...400 { try await log.append(entry(n)) }
        #expect(try Self.archives(dir).count >= 1)
        let path = dir.path + "/audit.log"
        // The new file complete, the old one archived, the new one not yet in place.
        #expect(rename(path, path + ".next") == 0)
        let reopened = try Self.open(dir, checkpointing, required: true)
        #expect(reopened.lastSeq == log.lastSeq)
        #expect(FileManager.default.fileExists(atPath: path) && !FileManager.default.fileExists(atPath: path + ".next"))
        // The current file cut to its first record: below its sealed checkpoint.
        let all = try lines(path)
        try write(Array(all.prefix(1)), to: path)
        #expect(throws: AuditError.self) { try Self.open(dir, checkpointing, required: true) }
    }
}
