import Foundation

/// The PC/SC peers `make test` starts (scripts/pcsc-peer.sh): pcscd with vpcd in a network
/// namespace of its own, and ukey-vcard as the card in it. Its directory comes in
/// `UKEY_TEST_PCSC_DIR`. Tests stop and start the card by its PID, inside pcscd's namespace, as a
/// user pulls and re-inserts a key. With CI=true a missing peer fails the test.
public enum VirtualCardPeer {
    public static let directory = ProcessInfo.processInfo.environment["UKEY_TEST_PCSC_DIR"]
    /// Whether a card test should run: always under CI (so that a missing peer fails loudly).
    public static var shouldRun: Bool { ExternalTool.inCI || directory != nil }
    public static let skipReason =
        "no virtual card: make test starts pcscd and ukey-vcard (scripts/pcsc-peer.sh) and sets UKEY_TEST_PCSC_DIR"
    public static let opensc = ExternalTool("opensc-tool")

    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public static func requireDirectory() throws -> String {
        guard let directory else {
            throw Unavailable(
                description: "UKEY_TEST_PCSC_DIR is not set but CI=true requires the PC/SC peers; \(skipReason)"
            )
        }
        return directory
    }

    /// The three readers scripts/pcsc-peer.sh makes: reader `n` takes the card of ukey-vcard on
    /// port 35963+n. The single-card suites use the first.
    public static let readers = ["Virtual PCD 00 00", "Virtual PCD 00 01", "Virtual PCD Users 00 00"]

    /// The daemon suites on the card: ukeyd's keys card, which no user logs in with (its 9c key
    /// signs quotes and audit checkpoints for whoever has its PIN), in the first reader; alice's
    /// and bob's own cards in the others (`make test` enrols all three).
    public static let keysReader = readers[0]
    public static let userReaders = ["alice": readers[1], "bob": readers[2]]
    /// The keys card's PIN in the daemon suites (ukeyd's pin file holds it; no user knows it).
    public static let keysPIN = "keys-p1"

    /// Gives a card's PIN `pin` again, with all its tries, by its PUK (yubico-piv-tool, as an
    /// administrator would): each daemon test starts from cards in a known state.
    public static func resetPIN(reader: String, puk: String, pin: String) throws {
        let result = try ExternalTool("yubico-piv-tool").run(["-r", reader, "-a", "unblock-pin", "-P", puk, "-N", pin])
        guard result.status == 0 else {
            throw Unavailable(
                description: "yubico-piv-tool could not reset the PIN of the card in \(reader): \(result.stderr)"
            )
        }
    }

    /// Pulls the card from reader `slot`: stops its ukey-vcard by PID and waits until pcscd sees
    /// the reader empty.
    public static func removeCard(slot: Int = 0) throws {
        let directory = try requireDirectory()
        if let pid = pid(pidName(slot)) {
            kill(pid, SIGTERM)
            for _ in 0..<100 where kill(pid, 0) == 0 { usleep(20_000) }
            kill(pid, SIGKILL)
            try? FileManager.default.removeItem(atPath: "\(directory)/\(pidName(slot)).pid")
        }
        try wait(slot: slot, present: false)
    }

    /// Inserts the card into reader `slot` again (with `fresh`, a factory-new one: its state
    /// wiped first) and waits until pcscd answers with it.
    public static func insertCard(slot: Int = 0, fresh: Bool = false) throws {
        let directory = try requireDirectory()
        precondition(readers.indices.contains(slot), "scripts/pcsc-peer.sh makes readers 0, 1 and 2")
        if pid(pidName(slot)) != nil { try removeCard(slot: slot) }
        let state = "\(directory)/card\(slot == 0 ? "" : String(slot))"
        if fresh { try? FileManager.default.removeItem(atPath: state) }
        try? FileManager.default.createDirectory(
            atPath: state,
            withIntermediateDirectories: false,
            attributes: [.posixPermissions: 0o700]
        )
        guard let pcscd = pid("pcscd") else { throw Unavailable(description: "no pcscd.pid in \(directory)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = [
            "--net=/proc/\(pcscd)/ns/net", "--", PackagePaths.builtProduct("ukey-vcard"), "--state", state, "--port",
            String(35963 + slot),
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try String(process.processIdentifier).write(
            toFile: "\(directory)/\(pidName(slot)).pid",
            atomically: true,
            encoding: .utf8
        )
        try wait(slot: slot, present: true)
    }

    private static func pidName(_ slot: Int) -> String { slot == 0 ? "vcard" : "vcard\(slot)" }

    private static func pid(_ name: String) -> Int32? {
        guard let directory, let text = try? String(contentsOfFile: "\(directory)/\(name).pid", encoding: .utf8) else {
            return nil
        }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// pcscd polls its readers every ~0.45 s: asks it rather than sleeping.
    private static func wait(slot: Int, present: Bool) throws {
        for _ in 0..<150 {
            let answered = (try? opensc.run(["-r", String(slot), "-a"]))?.status == 0
            if answered == present { return }
            usleep(100_000)
        }
        throw Unavailable(
            description:
                "pcscd did not see the card \(present ? "inserted into" : "removed from") \(readers[slot]) within 15 s"
        )
    }
}
