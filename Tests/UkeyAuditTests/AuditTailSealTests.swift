import Crypto
import Foundation
import Testing
import UkeyAudit
import UkeyCore
import UkeyTesting

/// The review's finding: records after the last sealed checkpoint could be cut off without
/// detection; a log of 73 records with no checkpoint was accepted when cut to 24.
@Suite("Audit log: the acknowledged tail is sealed with every batch")
struct AuditTailSealTests {
    static let key = (0..<32).map { UInt8($0) }

    static func open(_ dir: TemporaryDirectory, required: Bool, key: [UInt8] = key) throws -> AuditLog {
        var configuration = AuditLog.Configuration(path: dir.path + "/audit.log")
        configuration.checkpointEvery = 1000
        configuration.checkpointInterval = 1e9
        let seal = try AuditTailSeal(directory: dir.path, key: key)
        return try AuditLog(
            configuration: configuration,
            sealed: nil,
            checkpointing: TestCheckpointing(),
            tailSeal: seal,
            tailSealRequired: required,
            problems: { _ in }
        )
    }

    @Test(
        "73 acknowledged records without a checkpoint, cut to 24 or by one: reopening names the missing records; an intact log reopens"
    )
    func cutTailIsDetected() async throws {
        let dir = try TemporaryDirectory()
        let log = try Self.open(dir, required: false)
        for n in 1...73 { try await log.append(entry(n)) }
        let path = dir.path + "/audit.log"
        let all = try lines(path)
        #expect(all.count == 73)
        // Intact: opens, and continues.
        _ = try Self.open(dir, required: true)
        for (keep, message) in [(24, "records 25-73 are missing"), (72, "record 73 is missing")] {
            try write(Array(all.prefix(keep)), to: path)
            #expect { try Self.open(dir, required: true) } throws: { error in
                (error as? AuditError)?.description.contains(message) == true
            }
        }
        // Put back whole, it opens again.
        try write(all, to: path)
        _ = try Self.open(dir, required: true)
    }

    @Test("a seal file removed, edited or made with another key is an integrity error")
    func sealItselfIsChecked() async throws {
        let dir = try TemporaryDirectory()
        let log = try Self.open(dir, required: false)
        for n in 1...5 { try await log.append(entry(n)) }
        let sealPath = dir.path + "/" + AuditTailSeal.fileName
        let good = try Data(contentsOf: URL(fileURLWithPath: sealPath))
        #expect { try Self.open(dir, required: true, key: Array(repeating: 7, count: 32)) } throws: { error in
            (error as? AuditError)?.description.contains("no valid seal") == true
        }
        var edited = good
        edited[20] ^= 1
        edited[20 + 96] ^= 1
        try edited.write(to: URL(fileURLWithPath: sealPath))
        #expect { try Self.open(dir, required: true) } throws: { error in
            (error as? AuditError)?.description.contains("no valid seal") == true
        }
        try FileManager.default.removeItem(atPath: sealPath)
        #expect { try Self.open(dir, required: true) } throws: { error in
            (error as? AuditError)?.description.contains("empty or missing") == true
        }
    }

    @Test("a write torn in one slot leaves the other slot's seal, which still covers every acknowledged record")
    func tornSlot() async throws {
        let dir = try TemporaryDirectory()
        let log = try Self.open(dir, required: false)
        for n in 1...9 { try await log.append(entry(n)) }
        let sealPath = dir.path + "/" + AuditTailSeal.fileName
        let bytes = try Data(contentsOf: URL(fileURLWithPath: sealPath))
        // Spoil whichever slot is newer: the older one is the previous batch's seal.
        let seal = try AuditTailSeal(directory: dir.path, key: Self.key)
        let newest = try #require(try seal.read())
        #expect(newest.seq == 9)
        for slot in 0..<2 {
            var copy = bytes
            copy[slot * 96 + 40] ^= 0xff
            try copy.write(to: URL(fileURLWithPath: sealPath))
            let survivor = try #require(try AuditTailSeal(directory: dir.path, key: Self.key).read())
            #expect(survivor.seq <= 9)
        }
        try bytes.write(to: URL(fileURLWithPath: sealPath))
        _ = try Self.open(dir, required: true)
    }
}
