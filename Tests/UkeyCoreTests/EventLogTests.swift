import Foundation
import Testing
import UkeyCore

@Suite("TCG PC Client crypto-agile event log")
struct EventLogTests {
    static func sampleBoot(banks: Set<HashAlgorithm> = [.sha256, .sha384]) throws -> MeasuredBoot {
        var boot = MeasuredBoot(expected: try Fixtures.paperTree(), bootID: "boot-1", banks: banks)
        var chain = boot.chain
        for name in ["vmm", "io-vm", "loader", "kernel", "base", "office"] {
            for component in chain.expected.entity(named: name)!.components {
                _ = try boot.measure(entity: name, component: component.name, digest: component.expected)
            }
        }
        _ = try boot.measure(entity: "dev", component: "overlay", digest: Digest.of([1, 2, 3], using: .sha512))
        chain = boot.chain
        #expect(chain.state(of: "dev") == .untrusted)
        return boot
    }

    @Test("a written log parses back to the same events and replays to the registers")
    func roundTrip() throws {
        let boot = try Self.sampleBoot()
        let bytes = boot.eventLog.serialized()
        let parsed = try EventLog(parsing: bytes)
        #expect(parsed == boot.eventLog)
        #expect(parsed.replay() == boot.registers)
        #expect(parsed.events.allSatisfy { $0.eventType == TCGEventType.ipl })
        #expect(String(decoding: parsed.events[0].data, as: UTF8.self) == "vmm/kernel")
        #expect(String(decoding: parsed.vendorInfo, as: UTF8.self) == "ukey boot boot-1")
        // A digest of another algorithm than a bank extends that bank with the hash of its text.
        let devEvent = parsed.events.last!
        #expect(devEvent.digests.map(\.bytes.count) == [32, 48])
        #expect(
            devEvent.digests[0].bytes
                == HashAlgorithm.sha256.hash(Array(Digest.of([1, 2, 3], using: .sha512).description.utf8))
        )
    }

    @Test("a reset zeroes the registers and starts a log that names both boots")
    func resetStartsNewLog() throws {
        var boot = try Self.sampleBoot()
        _ = boot.reset(bootID: "boot-2")
        #expect(boot.eventLog.events.isEmpty)
        #expect(try boot.registers.value(8).bytes == [UInt8](repeating: 0, count: 32))
        let parsed = try EventLog(parsing: boot.eventLog.serialized())
        #expect(String(decoding: parsed.vendorInfo, as: UTF8.self) == "ukey boot boot-2 reset-from boot-1")
    }

    @Test("every truncated prefix is refused or is a whole shorter log; never a crash")
    func truncatedPrefixes() throws {
        let log = try Self.sampleBoot().eventLog
        let bytes = log.serialized()
        var refused = 0
        for length in 0..<bytes.count {
            do {
                let parsed = try EventLog(parsing: Array(bytes[..<length]))
                // Only a cut exactly between two events yields a log, and then it is a prefix of the original.
                #expect(Array(log.events.prefix(parsed.events.count)) == parsed.events)
                #expect(parsed.events.count < log.events.count)
            } catch {
                #expect(error.code == .malformedEventLog)
                #expect(!error.reason.isEmpty)
                refused += 1
            }
        }
        #expect(refused >= bytes.count - log.events.count - 1)
    }

    @Test("random corruption never crashes the reader, and what parses replays consistently")
    func corruption() throws {
        let bytes = try Self.sampleBoot().eventLog.serialized()
        var rng = SplitMix64(seed: 42)
        for _ in 0..<3000 {
            var mutated = bytes
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                mutated[Int.random(in: 0..<mutated.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if let parsed = try? EventLog(parsing: mutated) {
                _ = parsed.replay()
                #expect(try EventLog(parsing: parsed.serialized()) == parsed)
            }
        }
        for _ in 0..<500 {
            let garbage = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(throws: UkeyCoreError.self) { try EventLog(parsing: garbage) }
        }
    }

    @Test("sizes in the log are bounded before anything is allocated")
    func limits() throws {
        var bytes = EventLog(banks: [.sha256]).serialized()
        // An event claiming 4 GiB of data.
        bytes +=
            [8, 0, 0, 0, 0x0D, 0, 0, 0, 1, 0, 0, 0, 0x0B, 0] + [UInt8](repeating: 0, count: 32) + [
                0xff, 0xff, 0xff, 0xff,
            ]
        #expect {
            try EventLog(parsing: bytes)
        } throws: { error in
            (error as? UkeyCoreError)?.reason.contains("limit") == true
        }
        // A register outside the bank.
        var badRegister = EventLog(banks: [.sha256]).serialized()
        badRegister += [24, 0, 0, 0, 0x0D, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        #expect(throws: UkeyCoreError.self) { try EventLog(parsing: badRegister) }
        // A known algorithm declared with the wrong size.
        var header = EventLog(banks: [.sha256]).serialized()
        let sizeOffset = 32 + 16 + 4 + 4 + 4 + 2  // header fields up to the first digest size
        header[sizeOffset] = 20
        #expect(throws: UkeyCoreError.self) { try EventLog(parsing: header) }
    }
}
