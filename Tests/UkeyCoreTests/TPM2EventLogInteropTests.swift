import Foundation
import Testing
import UkeyCore
import UkeyTesting

/// The event log checked by an independent reader: tpm2-tools' `tpm2_eventlog` must parse what we
/// write, and the registers it replays must equal ours, bank by bank.
@Suite("Event log interop with tpm2_eventlog")
struct TPM2EventLogInteropTests {
    static let tool = ExternalTool("tpm2_eventlog")

    static func replayedRegisters(_ output: String) -> [String: [Int: String]] { TPM2EventLogReplay.registers(output) }

    @Test(
        "tpm2_eventlog parses our log and replays it to our registers",
        .enabled(if: tool.shouldRun, "\(tool.skipReason)")
    )
    func replayMatches() throws {
        let boot = try EventLogTests.sampleBoot(banks: [.sha256, .sha384])
        let directory = try TemporaryDirectory()
        try directory.write("eventlog.bin", boot.eventLog.serialized())
        let result = try Self.tool.run([directory.file("eventlog.bin")])
        #expect(result.status == 0, "tpm2_eventlog failed: \(result.stderr)")
        #expect(!result.stderr.contains("ERROR"), "\(result.stderr)")
        #expect(result.stdout.contains("Spec ID Event03"))
        #expect(result.stdout.contains("EV_IPL"))
        #expect(result.stdout.contains("office/overlay"))

        let replayed = Self.replayedRegisters(result.stdout)
        #expect(Set(replayed.keys) == ["sha256", "sha384"])
        for algorithm in [HashAlgorithm.sha256, .sha384] {
            let ours = boot.registers.banks[algorithm]!
            let zero = [UInt8](repeating: 0, count: algorithm.digestSize)
            let nonZero = Dictionary(
                uniqueKeysWithValues: ours.values.enumerated().filter { $0.element != zero }.map {
                    ($0.offset, Hex.encode($0.element))
                }
            )
            #expect(nonZero.count == 6, "registers 8-13 are used by the sample boot")
            #expect(replayed[algorithm.rawValue] == nonZero)
        }
    }

    @Test(
        "an SM3 bank: the Spec ID event lists TPM_ALG_SM3_256 (0x0012, 32 bytes), events carry SM3 digests, and tpm2_eventlog replays the SM3 bank to our registers",
        .enabled(if: tool.shouldRun, "\(tool.skipReason)")
    )
    func sm3Bank() throws {
        // Measurements in SM3 (as a policy with sm3 digests has them) and in SHA-256, into both banks.
        var log = EventLog(banks: [.sha256, .sm3], vendorInfo: "ukey boot sm3")
        var registers = RegisterSet(algorithms: [.sha256, .sm3])
        for (register, digest) in [
            (8, Digest.of(Array("an SM3 kernel".utf8), using: .sm3)),
            (8, Digest.of(Array("an SM3 initrd".utf8), using: .sm3)),
            (9, Digest.of(Array("a SHA-256 image".utf8))), (10, Digest.of(Array("an SM3 loader".utf8), using: .sm3)),
        ] {
            log.appendMeasurement(register: register, digest: digest, description: "sm3 test")
            try registers.extend(register, with: digest)
        }
        let boot = (eventLog: log, registers: registers)
        let bytes = boot.eventLog.serialized()
        #expect(try EventLog(parsing: bytes).replay() == boot.registers)
        let directory = try TemporaryDirectory()
        try directory.write("eventlog.bin", bytes)
        let result = try Self.tool.run([directory.file("eventlog.bin")])
        #expect(result.status == 0 && !result.stderr.contains("ERROR"), "\(result.stderr)")
        #expect(result.stdout.contains("sm3_256"), "tpm2_eventlog does not name the SM3 bank")
        let replayed = Self.replayedRegisters(result.stdout)
        let ours = boot.registers.banks[.sm3]!
        let zero = [UInt8](repeating: 0, count: 32)
        let nonZero = Dictionary(
            uniqueKeysWithValues: ours.values.enumerated().filter { $0.element != zero }.map {
                ($0.offset, Hex.encode($0.element))
            }
        )
        #expect(!nonZero.isEmpty)
        #expect(replayed["sm3_256"] == nonZero, "\(replayed.keys)")
        #expect(replayed["sha256"]?.count == nonZero.count)
    }

    @Test("tpm2_eventlog sees a tampered log differently", .enabled(if: tool.shouldRun, "\(tool.skipReason)"))
    func tamperingChangesReplay() throws {
        let boot = try EventLogTests.sampleBoot(banks: [.sha256])
        var bytes = boot.eventLog.serialized()
        let directory = try TemporaryDirectory()
        // Flip one bit inside the first event's SHA-256 digest: after the header, and the event's
        // register, type, digest count and algorithm id (4 + 4 + 4 + 2 bytes).
        let headerSize = EventLog(banks: [.sha256], vendorInfo: "ukey boot boot-1").serialized().count
        bytes[headerSize + 14 + 5] ^= 0x01
        try directory.write("tampered.bin", bytes)
        let result = try Self.tool.run([directory.file("tampered.bin")])
        #expect(result.status == 0)
        let replayed = Self.replayedRegisters(result.stdout)["sha256"]
        #expect(replayed?[8] != Hex.encode(boot.registers.banks[.sha256]!.values[8]))
        #expect(replayed?[9] == Hex.encode(boot.registers.banks[.sha256]!.values[9]))
    }
}
