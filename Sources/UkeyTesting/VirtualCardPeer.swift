import Foundation

/// The PC/SC peers `make test` starts (scripts/pcsc-peer.sh): pcscd with vpcd in a network
/// namespace of its own, and ukey-vcard as the card in it. Its directory comes in
/// `UKEY_TEST_PCSC_DIR`. Tests stop and start the card by its PID, inside pcscd's namespace, as a
/// user pulls and re-inserts a key. With CI=true a missing peer fails the test.
public enum VirtualCardPeer {
    public static let directory = ProcessInfo.processInfo.environment["UKEY_TEST_PCSC_DIR"]
    /// Whether a card test should run: always under CI (so that a missing peer fails loudly).
    public static var shouldRun: Bool { ExternalTool.inCI || directory != nil }
    public static let skipReason = "no virtual card: make test starts pcscd and ukey-vcard (scripts/pcsc-peer.sh) and sets UKEY_TEST_PCSC_DIR"
    public static let opensc = ExternalTool("opensc-tool")

    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public static func requireDirectory() throws -> String {
        guard let directory else { throw Unavailable(description: "UKEY_TEST_PCSC_DIR is not set but CI=true requires the PC/SC peers; \(skipReason)") }
        return directory
    }

    /// The readers of the users' own cards in the daemon suites on the card (`make test` enrols
    /// them): alice's card is also the one that holds ukeyd's keys.
    public static let userReaders = ["alice": "Virtual PCD 00 00", "bob": "Virtual PCD 00 01"]

    /// Gives a card's PIN `pin` again, with all its tries, by its PUK (yubico-piv-tool, as an
    /// administrator would): each daemon test starts from cards in a known state.
    public static func resetPIN(reader: String, puk: String, pin: String) throws {
        let result = try ExternalTool("yubico-piv-tool").run(["-r", reader, "-a", "unblock-pin", "-P", puk, "-N", pin])
        guard result.status == 0 else { throw Unavailable(description: "yubico-piv-tool could not reset the PIN of the card in \(reader): \(result.stderr)") }
    }

    /// Pulls the card: stops ukey-vcard by its PID and waits until pcscd sees the reader empty.
    public static func removeCard() throws {
        let directory = try requireDirectory()
        if let pid = pid("vcard") {
            kill(pid, SIGTERM)
            for _ in 0..<100 where kill(pid, 0) == 0 { usleep(20_000) }
            kill(pid, SIGKILL)
            try? FileManager.default.removeItem(atPath: "\(directory)/vcard.pid")
        }
        try wait(present: false)
    }

    /// Inserts the card again (with `fresh`, a factory-new one: its state wiped first) and waits
    /// until pcscd answers with it.
    public static func insertCard(fresh: Bool = false) throws {
        let directory = try requireDirectory()
        if pid("vcard") != nil { try removeCard() }
        if fresh { try? FileManager.default.removeItem(atPath: "\(directory)/card") }
        guard let pcscd = pid("pcscd") else { throw Unavailable(description: "no pcscd.pid in \(directory)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["--net=/proc/\(pcscd)/ns/net", "--", PackagePaths.builtProduct("ukey-vcard"), "--state", "\(directory)/card"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try String(process.processIdentifier).write(toFile: "\(directory)/vcard.pid", atomically: true, encoding: .utf8)
        try wait(present: true)
    }

    private static func pid(_ name: String) -> Int32? {
        guard let directory, let text = try? String(contentsOfFile: "\(directory)/\(name).pid", encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// pcscd polls its readers every ~0.45 s: asks it rather than sleeping.
    private static func wait(present: Bool) throws {
        for _ in 0..<150 {
            let answered = (try? opensc.run(["-r", "0", "-a"]))?.status == 0
            if answered == present { return }
            usleep(100_000)
        }
        throw Unavailable(description: "pcscd did not see the card \(present ? "inserted" : "removed") within 15 s")
    }
}
