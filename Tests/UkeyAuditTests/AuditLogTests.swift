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
        let result = try AuditVerifier.verify(
            path: dir.path + "/audit.log",
            auditKey: signer.key.publicKey,
            sealed: signer.sealed
        )
        #expect(result.ok, "\(result.reason ?? "")")
        // 12 records, a checkpoint after every 5, and a final one at close.
        #expect(result.count == 15)
        #expect(result.checkpoints == 3)
        #expect(result.unsignedTail == 0)
        #expect(signer.sealed?.seq == 15)
        let first =
            try JSONSerialization.jsonObject(with: Data(try lines(dir.path + "/audit.log")[0])) as? [String: Any]
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
        let result = try AuditVerifier.verify(
            path: dir.path + "/audit.log",
            auditKey: signer.key.publicKey,
            sealed: signer.sealed
        )
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
        #expect { try AuditLog.make(in: dir, sealed: sealed, signer) } throws: {
            "\($0)".contains("cut off the end") || "\($0)".contains("sealed checkpoint")
        }

        var edited = original
        edited[edited.count - 1][20] ^= 1
        try write(edited, to: path)
        #expect { try AuditLog.make(in: dir, sealed: sealed, signer) } throws: {
            "\($0)".contains("integrity check failed")
        }

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

    @Test("a closed log refuses appends")
    func closedRefuses() async throws {
        let dir = try TemporaryDirectory()
        let signer = TestCheckpointing()
        let log = try AuditLog.make(in: dir, signer)
        try await log.append(entry(1))
        await log.close()
        await #expect { try await log.append(entry(2)) } throws: { "\($0)".contains("closed") }
    }

    /// The disk as the log sees it: real writes and syncs until told to fail.
    final class FailingDisk: @unchecked Sendable {
        // @unchecked: the switches are guarded by `lock`.
        private let lock = NSLock()
        private var writeFailure: Int32?, syncFailure: Int32?, partialWrite = false
        func failWrites(_ code: Int32, afterHalf: Bool = false) {
            lock.withLock { (writeFailure, partialWrite) = (code, afterHalf) }
        }
        func failSyncs(_ code: Int32) { lock.withLock { syncFailure = code } }
        func heal() { lock.withLock { (writeFailure, syncFailure, partialWrite) = (nil, nil, false) } }

        var io: AuditFileIO {
            AuditFileIO(
                write: { fd, bytes, count in
                    let (failure, partial) = self.lock.withLock { (self.writeFailure, self.partialWrite) }
                    guard let failure else { return Glibc.write(fd, bytes, count) }
                    if partial, count > 1 {
                        // Half the batch reaches the file, then the disk is full: a torn record.
                        self.lock.withLock { self.partialWrite = false }
                        return Glibc.write(fd, bytes, count / 2)
                    }
                    errno = failure
                    return -1
                },
                sync: { fd in
                    guard let failure = self.lock.withLock({ self.syncFailure }) else { return fdatasync(fd) }
                    errno = failure
                    return -1
                }
            )
        }
    }

    static func log(in dir: TemporaryDirectory, _ signer: TestCheckpointing, disk: FailingDisk) throws -> AuditLog {
        var configuration = AuditLog.Configuration(path: dir.path + "/audit.log")
        configuration.checkpointEvery = 1000
        configuration.checkpointInterval = 1e9
        configuration.fileIO = disk.io
        return try AuditLog(configuration: configuration, sealed: nil, checkpointing: signer, problems: { _ in })
    }

    @Test(
        "a write that fails (disk full, torn half-way) or a sync that fails: the append throws with the cause, the log takes nothing more, and what was acknowledged verifies after reopening",
        arguments: [
            ("write", false, "cannot write the audit log", "No space left on device"),
            ("write", true, "cannot write the audit log", "No space left on device"),
            ("sync", false, "cannot sync the audit log", "Input/output error"),
        ]
    )
    func diskFailures(failing: String, torn: Bool, reason: String, cause: String) async throws {
        let dir = try TemporaryDirectory()
        let signer = TestCheckpointing()
        let disk = FailingDisk()
        let log = try Self.log(in: dir, signer, disk: disk)
        for n in 1...5 { try await log.append(entry(n)) }
        if failing == "write" { disk.failWrites(ENOSPC, afterHalf: torn) } else { disk.failSyncs(EIO) }
        await #expect { try await log.append(entry(6)) } throws: { error in
            "\(error)".contains(reason) && "\(error)".contains(cause)
        }
        // The log has stopped: even with the disk well again it acknowledges nothing more.
        disk.heal()
        await #expect(throws: AuditError.self) { try await log.append(entry(7)) }
        await log.close()

        // Reopened on a good disk: the five acknowledged records are there and the chain verifies;
        // a torn record is dropped, not taken.
        let reopened = try AuditLog.make(in: dir, signer)
        #expect(reopened.recovery.droppedPartialBytes > 0 || !torn)
        #expect(reopened.lastSeq >= 5)
        try await reopened.append(entry(8))
        await reopened.close()
        let result = try AuditVerifier.verify(
            path: dir.path + "/audit.log",
            auditKey: signer.key.publicKey,
            sealed: nil
        )
        #expect(result.ok, "\(result.reason ?? "")")
        let paths = try lines(dir.path + "/audit.log").compactMap { line in
            ((try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]).flatMap {
                ($0["subject"] as? [String: Any])?["path"] as? String
            }
        }
        #expect(Array(paths.prefix(5)) == (1...5).map { "/usr/bin/tool-\($0)" }, "\(paths)")
        #expect(paths.contains("/usr/bin/tool-8") && !paths.contains("/usr/bin/tool-7"), "\(paths)")
    }
}
