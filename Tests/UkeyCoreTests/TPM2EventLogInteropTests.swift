import Foundation
import Testing
import UkeyCore
import UkeyTesting

/// The event log checked by an independent reader: tpm2-tools' `tpm2_eventlog` must parse what we
/// write, and the registers it replays must equal ours, bank by bank.
@Suite("Event log interop with tpm2_eventlog")
struct TPM2EventLogInteropTests {
    static let tool = ExternalTool("tpm2_eventlog")

    /// The `pcrs:` section of tpm2_eventlog's YAML: bank -> register -> lower-case hex.
    static func replayedRegisters(_ output: String) -> [String: [Int: String]] {
        var banks: [String: [Int: String]] = [:]
        var inPCRs = false
        var bank: String?
        for line in output.split(separator: "\n", omittingEmptySubsequences: true) {
            if line == "pcrs:" { inPCRs = true; continue }
            guard inPCRs else { continue }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasSuffix(":") && !trimmed.contains(" ") {
                bank = String(trimmed.dropLast())
            } else if let bank, let colon = trimmed.firstIndex(of: ":") {
                let index = Int(trimmed[..<colon].trimmingCharacters(in: .whitespaces))
                let value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                if let index, value.hasPrefix("0x") { banks[bank, default: [:]][index] = value.dropFirst(2).lowercased() }
            }
        }
        return banks
    }

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
                uniqueKeysWithValues: ours.values.enumerated().filter { $0.element != zero }.map { ($0.offset, Hex.encode($0.element)) }
            )
            #expect(nonZero.count == 6, "registers 8-13 are used by the sample boot")
            #expect(replayed[algorithm.rawValue] == nonZero)
        }
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
