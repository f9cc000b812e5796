import Crypto
import Foundation
import Testing
import UkeyAudit
import UkeyCore
import UkeyTesting

@Suite("Audit log: appends, group commit, checkpoints, reopening")
struct AuditLogTests {
    @Test("records are numbered, chained and checkpointed; the log verifies with the audit key")
    func appendAndVerify() async throws {
        let dir = try TemporaryDirectory()
        let signer = TestCheckpointing()
        let log = try AuditLog.make(in: dir, every: 5, signer)
        for n in 1...12 { try await log.append(entry(n)) }
        await log.close()
        let result = try AuditVerifier.verify(path: dir.path + "/audit.log", auditKey: signer.key.publicKey, sealed: signer.sealed)
        #expect(result.ok, "\(result.reason ?? "")")
        // 12 records, a checkpoint after every 5, and a final one at close.
        #expect(result.count == 15)
        #expect(result.checkpoints == 3)
        #expect(result.unsignedTail == 0)
        #expect(signer.sealed?.seq == 15)
        let first = try JSONSerialization.jsonObject(with: Data(try lines(dir.path + "/audit.log")[0])) as? [String: Any]
        #expect(first?["prev"] as? String == AuditLine.genesis)
        #expect((first?["actor"] as? [String: Any])?["role"] as? String == "hypervisor")
    }

    @Test("concurrent appends share fsyncs (group commit) and all become durable in one unbroken chain")
    func groupCommit() async throws {
        let dir = try TemporaryDirectory()
        let signer = TestCheckpointing()
        let log = try AuditLog.make(in: dir, every: 100_000, signer)
        try await withThrowingTaskGroup { group in
            for task in 0..<50 {
                group.addTask { for n in 0..<40 { try await log.append(entry(task * 1000 + n)) } }
            }
            try await group.waitForAll()
        }
        #expect(log.lastSeq == 2000)
        #expect(log.batches < 2000, "every record got its own fsync: \(log.batches) batches")
        await log.close()
        let result = try AuditVerifier.verify(path: dir.path + "/audit.log", auditKey: signer.key.publicKey, sealed: signer.sealed)
        #expect(result.ok && result.count == 2001)
    }

    @Test("reopening continues the chain; a record cut short by a crash is dropped")
    func reopen() async throws {
        let dir = try TemporaryDirectory()
        let signer = TestCheckpointing()
        var log = try AuditLog.make(in: dir, every: 3, signer)
        for n in 1...4 { try await log.append(entry(n)) }
        await log.close()
        let path = dir.path + "/audit.log"
        // A crash in the middle of a write leaves half a line.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"seq":7,"time":"2026"#.utf8))
        try handle.close()
        log = try AuditLog.make(in: dir, every: 3, sealed: signer.sealed, signer)
        #expect(log.recovery.droppedPartialBytes == 21)
        #expect(log.recovery.records == 6)
        try await log.append(entry(5))
        await log.close()
        let result = try AuditVerifier.verify(path: path, auditKey: signer.key.publicKey, sealed: signer.sealed)
        #expect(result.ok, "\(result.reason ?? "")")
        #expect(result.count == 8)
    }

    @Test("opening refuses a log cut below its sealed checkpoint, or missing it, or with a broken tail")
    func openRefusesTampering() async throws {
        let dir = try TemporaryDirectory()
        let signer = TestCheckpointing()
        let log = try AuditLog.make(in: dir, every: 3, signer)
        for n in 1...7 { try await log.append(entry(n)) }
        await log.close()
        let path = dir.path + "/audit.log"
        let original = try lines(path)
        let sealed = try #require(signer.sealed)

        try write(Array(original.prefix(Int(sealed.seq) - 1)), to: path)
        #expect { try AuditLog.make(in: dir, sealed: sealed, signer) } throws: { "\($0)".contains("cut off the end") || "\($0)".contains("sealed checkpoint") }

        var edited = original
        edited[edited.count - 1][20] ^= 1
        try write(edited, to: path)
        #expect { try AuditLog.make(in: dir, sealed: sealed, signer) } throws: { "\($0)".contains("integrity check failed") }

        try write(original, to: path)
        chmod(path, 0o644)
        #expect { try AuditLog.make(in: dir, sealed: sealed, signer) } throws: { "\($0)".contains("mode 0600") }
    }

    @Test("an idle log still gets its checkpoint within the interval")
    func timedCheckpoint() async throws {
        let dir = try TemporaryDirectory()
        let signer = TestCheckpointing()
        var configuration = AuditLog.Configuration(path: dir.path + "/audit.log")
        configuration.checkpointInterval = 0.2
        let log = try AuditLog(configuration: configuration, sealed: nil, checkpointing: signer, problems: { _ in })
        try await log.append(entry(1))
        for _ in 0..<400 where signer.sealed == nil { try await Task.sleep(for: .milliseconds(50)) }
        #expect(signer.sealed?.seq == 2)
        await log.close()
    }

    @Test("after the log fails, appends fail instead of being dropped")
    func failureIsReported() async throws {
        let dir = try TemporaryDirectory()
        let signer = TestCheckpointing()
        let log = try AuditLog.make(in: dir, signer)
        try await log.append(entry(1))
        await log.close()
        await #expect(throws: AuditError.self) { try await log.append(entry(2)) }
    }
}
