import Foundation
import Testing
import UkeyTesting
import UkeyVarlink

/// The review's finding: after more measurements than the journal kept (1,000,000), a tampered
/// measurement was forgotten on restart and its entity came back trusted; a journal over 256 MiB
/// was ignored and a new boot began. Here the limit is small (`--max-measurements`) so the same
/// attack runs in seconds.
@Suite("ukeyd: the boot journal never forgets a measurement")
struct BootJournalLimitTests {
    static let limit = 24

    @Test(
        "at the limit, measurements are refused with JournalFull; a tampered measurement stays untrusted across kill -9; a journal that cannot be read whole stops the start"
    )
    func journalNeverForgets() throws {
        let f = try DaemonFixture(arguments: ["--max-measurements", "\(Self.limit)"])
        let vmm = try f.measureByPath("vmm")
        #expect(vmm.last?["verdict"] == "trusted")
        let connection = try f.daemon.connect()
        let component = "kernel"
        let good = try f.expected("vmm", component)
        // Fill the journal to one short of its limit with measurements that change nothing...
        for _ in vmm.count..<(Self.limit - 1) {
            _ = try connection.call(
                "io.ukey.Boot.Measure",
                ["entity": "vmm", "component": .string(component), "digest": .string(good)]
            )
        }
        // ...then the tampered one, the last the journal takes.
        let tampered = try connection.call(
            "io.ukey.Boot.Measure",
            [
                "entity": "io-vm", "component": "firmware",
                "digest": .string("sha256:" + String(repeating: "6", count: 64)),
            ]
        )
        #expect(tampered["verdict"] == "untrusted" && tampered["load"] == false)
        // The next measurement is refused, saying why and what to do; nothing was taken.
        let refusal = { (error: any Error) -> Bool in
            guard let error = error as? VarlinkError, error.name == "io.ukey.Boot.JournalFull" else { return false }
            return error.parameters["limit"] == .int(Self.limit)
                && error.parameters["reason"]?.stringValue?.contains("nothing measured is forgotten") == true
        }
        #expect {
            try connection.call(
                "io.ukey.Boot.Measure",
                ["entity": "vmm", "component": .string(component), "digest": .string(good)]
            )
        } throws: { refusal($0) }
        let eventCount = try f.daemon.call("io.ukey.Boot.Chain")["entities"]
        // A crash and a restart: the tampered entity is still untrusted, the limit still holds.
        f.daemon.kill9()
        try f.daemon.start()
        #expect(try f.state("io-vm").state == "untrusted")
        #expect(try f.state("vmm").state == "trusted")
        #expect(try f.daemon.call("io.ukey.Boot.Chain")["entities"] == eventCount)
        #expect { try f.measureByPath("io-vm") } throws: { refusal($0) }
        f.daemon.stop()

        // A journal with a damaged line in the middle, or more measurements than the limit, is
        // not read in part: ukeyd does not start, and says why.
        let path = f.daemon.runtimeDirectory + "/boot.journal"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        var lines = original.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let entry = lines[2]
        lines[3] = "{\"e\":\"vmm\",\"c\":"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: TestDaemonError.self) { try f.daemon.start() }
        #expect(f.daemon.log().contains("boot.journal line 4 is not a measurement"))
        try (original + entry + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: TestDaemonError.self) { try f.daemon.start() }
        #expect(f.daemon.log().contains("holds more than \(Self.limit) measurements"))
        // The journal as it was starts again: nothing was lost by the refusals.
        try original.write(toFile: path, atomically: true, encoding: .utf8)
        try f.daemon.start()
        #expect(try f.state("io-vm").state == "untrusted")
    }

    @Test(
        "a journal line with a key given twice (two readers could take two registers) stops the start like any unreadable line"
    )
    func duplicateKeyIsUnreadable() throws {
        let f = try DaemonFixture()
        try f.measureByPath("vmm")
        f.daemon.stop()
        let path = f.daemon.runtimeDirectory + "/boot.journal"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        var lines = original.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // The second measurement with its register given twice: 8, then 9.
        #expect(lines[2].hasSuffix(",\"r\":8}"), "\(lines[2])")
        lines[2] = String(lines[2].dropLast()) + ",\"r\":9}"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: TestDaemonError.self) { try f.daemon.start() }
        #expect(f.daemon.log().contains("boot.journal line 3 is not a measurement"))
        // Restored, it starts: the refusal lost nothing.
        try original.write(toFile: path, atomically: true, encoding: .utf8)
        try f.daemon.start()
        #expect(try f.state("vmm").state == "trusted")
    }

    @Test("a line cut short by a crash mid-append (no newline) was never acknowledged and is dropped")
    func cutLastLineIsDropped() throws {
        let f = try DaemonFixture()
        try f.measureByPath("vmm")
        f.daemon.stop()
        let path = f.daemon.runtimeDirectory + "/boot.journal"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"e\":\"io-vm\",\"c\":\"firm".utf8))
        try handle.close()
        try f.daemon.start()
        #expect(try f.state("vmm").state == "trusted" && f.state("io-vm").state == "pending")
    }
}
