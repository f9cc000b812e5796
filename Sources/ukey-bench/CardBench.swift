import Crypto
import Foundation
import UkeyPCSC
import UkeyPIV
import UkeyToken

/// The card path (issue: the PC/SC backend), when scripts/bench.sh started pcscd with ukey-vcard:
/// APDU round trips through pcscd by ukey's client against OpenSC's opensc-tool sending the same
/// APDU in one process, and a PIN-verified ECDSA signature on the card against the soft token's.
extension Bench {
    static func cardBenchmarks(softSign: Double) async throws {
        let card = SmartCard(reader: "Virtual PCD")
        let client = PIVClient(card: card)
        let select = CommandAPDU(cla: 0, ins: 0xA4, p1: 0x04, p2: 0x00, data: Array([0xA0, 0x00, 0x00, 0x03, 0x08]), le: 256)
        print("\nthe card path: ukey-vcard in pcscd (vpcd), through pcsc-lite")
        let ours = try await rate { try await card.transaction { card throws(CardError) in _ = try card.send(select) } }
        let peer = try openscAPDURate()
        row("APDU round trip: opensc-tool -s, one process", peer, nil)
        row("APDU round trip: UkeyPCSC SmartCard", ours, ours / peer)

        _ = try await client.generate(slot: .signature, managementKey: .factoryDefault)
        let hash = Array(SHA256.hash(data: Array("bench".utf8)))
        let cardSign = try await rate { _ = try await client.sign(hash, slot: .signature, pin: "123456") }
        row("ECDSA sign: soft token Token.Sign path", softSign, nil)
        row("ECDSA sign: card 9c, VERIFY + sign", cardSign, cardSign / softSign)
        print(String(format: "  a card signature costs %.2f ms, %.0fx the soft token's", 1000 / cardSign, softSign / cardSign))
    }

    /// opensc-tool sending `count` SELECTs in one run: its APDU rate, process start included
    /// (amortised over the count).
    static func openscAPDURate(count: Int = 3000) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/opensc-tool")
        process.arguments = ["-r", "0"] + Array(repeating: ["-s", "00:A4:04:00:05:A0:00:00:03:08:00"], count: count).flatMap { $0 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        process.waitUntilExit()
        let elapsed = clock.now - start
        guard process.terminationStatus == 0 else { throw BenchError("opensc-tool -s failed (status \(process.terminationStatus))") }
        return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
