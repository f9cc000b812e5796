import UkeyAPI
import Crypto
import Foundation
import UkeyPCSC
import UkeyPIV
import UkeyClient
import UkeyToken
import UkeyVarlink

/// The card path (issue: the PC/SC backend), when scripts/bench.sh started pcscd with ukey-vcard:
/// APDU round trips through pcscd by ukey's client against OpenSC's opensc-tool sending the same
/// APDU in one process, and a PIN-verified ECDSA signature on the card against the soft token's.
extension Bench {
    static func cardBenchmarks(softSign: Double) async throws {
        let card = SmartCard(reader: "Virtual PCD 00 00")
        let client = PIVClient(card: card)
        let select = CommandAPDU(
            cla: 0,
            ins: 0xA4,
            p1: 0x04,
            p2: 0x00,
            data: Array([0xA0, 0x00, 0x00, 0x03, 0x08]),
            le: 256
        )
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
        print(
            String(
                format: "  a card signature costs %.2f ms, %.0fx the soft token's",
                1000 / cardSign,
                softSign / cardSign
            )
        )
        try cardDaemonLatencies()
    }

    /// Login and Quote through ukeyd, one call at a time, with the keys, users and store on the
    /// card against the soft token, both daemons running the same policy in the same run.
    static func cardDaemonLatencies() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let binary = environment["UKEYD_BINARY"], let policyPath = environment["UKEY_BENCH_POLICY"] else {
            return
        }
        let policy = try String(contentsOfFile: policyPath, encoding: .utf8)
        let ukeyctl = URL(fileURLWithPath: binary).deletingLastPathComponent().appendingPathComponent("ukeyctl").path
        // ukeyd's keys card in the first reader, the user's own card in the second (scripts/bench.sh
        // inserted it): ukeyd refuses a user who would log in with its keys card.
        for arguments in [
            ["card", "enroll", "--reader", "Virtual PCD 00 00"],
            ["card", "enroll", "--reader", "Virtual PCD 00 01", "--user", "bench"],
        ] {
            let enroll = Process()
            enroll.executableURL = URL(fileURLWithPath: ukeyctl)
            enroll.arguments = arguments
            enroll.standardOutput = FileHandle.nullDevice
            try enroll.run()
            enroll.waitUntilExit()
            guard enroll.terminationStatus == 0 else {
                throw BenchError("ukeyctl \(arguments.joined(separator: " ")) failed")
            }
        }
        let pinFile = FileManager.default.temporaryDirectory.appendingPathComponent("ukey-bench-card-\(getpid()).pin")
            .path
        guard
            FileManager.default.createFile(
                atPath: pinFile,
                contents: Data("123456".utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else {
            throw BenchError("cannot write \(pinFile)")
        }
        defer { try? FileManager.default.removeItem(atPath: pinFile) }
        let card = try DaemonBench.start(
            binary: binary,
            policy: policy,
            arguments: [
                "--keys", "pcsc", "--users", "pcsc", "--store", "pcsc", "--pcsc-reader", "Virtual PCD 00 00",
                "--pcsc-pin-file", pinFile,
            ],
            name: "card"
        )
        defer { card.stop() }
        let soft = try DaemonBench.start(binary: binary, policy: policy, name: "soft-card-peer")
        defer { soft.stop() }
        for socket in [card.socket, soft.socket] {
            _ = try VarlinkConnection(path: socket).call(Admin.AddUser.self, .init(user: "bench", pin: "123456"))
        }
        let login = VarlinkCall(Auth.Login.self, .init(user: "bench", pin: "123456"))
        let quote = VarlinkCall(Boot.Quote.self, .init(nonce: Array("0123456789abcdef".utf8)))
        print(
            "\nthrough ukeyd, one call at a time (p50 / p99): keys, users and store on the card, against the soft token"
        )
        for (name, call, count) in [("Auth.Login", login, 100), ("Boot.Quote", quote, 300)] {
            let onCard = try DaemonBench.latency(socket: card.socket, count: count, call: call)
            let onSoft = try DaemonBench.latency(socket: soft.socket, count: count, call: call)
            print(
                "  \(name): "
                    + String(
                        format: "card %.2f / %.2f ms, soft %.2f / %.2f ms (card/soft at p50: x%.2f)",
                        onCard.p50 / 1000,
                        onCard.p99 / 1000,
                        onSoft.p50 / 1000,
                        onSoft.p99 / 1000,
                        onCard.p50 / onSoft.p50
                    )
            )
        }
    }

    /// opensc-tool sending `count` SELECTs in one run: its APDU rate, process start included
    /// (amortised over the count).
    static func openscAPDURate(count: Int = 3000) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/opensc-tool")
        process.arguments =
            ["-r", "0"] + Array(repeating: ["-s", "00:A4:04:00:05:A0:00:00:03:08:00"], count: count).flatMap { $0 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        process.waitUntilExit()
        let elapsed = clock.now - start
        guard process.terminationStatus == 0 else {
            throw BenchError("opensc-tool -s failed (status \(process.terminationStatus))")
        }
        return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
