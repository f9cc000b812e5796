import Foundation
import Testing
import UkeyCore
import UkeyTesting

/// While ukeyd reads a large allow-list at `ukeyctl policy load`, ukeyctl says what it waits for
/// and for how long, on a terminal only.
@Suite("ukeyctl policy load: a waiting line for a large allow-list", .serialized)
struct PolicyLoadProgressTests {
    @Test(
        "a policy with a 20 MiB allow-list: the line on a terminal (a pseudo-terminal, through script), none in a pipe"
    )
    func waitingLine() throws {
        let f = try DaemonFixture()
        let dir = try TemporaryDirectory("ukey-large-list")
        var list = ""
        list.reserveCapacity(24 << 20)
        for n in 0..<240_000 { list += String(format: "%064x", n) + "  /opt/tools/tool-\(n)\n" }
        try list.write(toFile: dir.file("office.list"), atomically: true, encoding: .utf8)
        func write(_ version: Int) throws -> String {
            let text = f.policyText
                .replacingOccurrences(of: "version: 1", with: "version: \(version)")
                .replacingOccurrences(
                    of: "  - vm: office\n    default: deny\n",
                    with:
                        "  - vm: office\n    default: deny\n    allow-list:\n      file: \(dir.file("office.list"))\n      digest: \(Digest.of(Array(list.utf8)))\n"
                )
            let path = dir.file("host-\(version).yaml")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            try Data(base64Encoded: try f.sign(text))!.write(to: URL(fileURLWithPath: path + ".sig"))
            return path
        }
        let ukeyctl = PackagePaths.builtProduct("ukeyctl")
        let environment = ["UKEY_SOCKET": f.daemon.socketPath, "PATH": "/usr/bin:/bin"]

        let onTerminal = try ExternalTool.run(
            "/usr/bin/script",
            ["-qefc", "\(ukeyctl) policy load \(try write(2))", "/dev/null"],
            environment: environment
        )
        #expect(onTerminal.status == 0, "\(onTerminal.stdout)")
        #expect(
            onTerminal.stdout.contains("\rukeyd is loading the policy: its allow-list ")
                && onTerminal.stdout.contains(" s\u{1B}[K") && onTerminal.stdout.contains("in force"),
            "no waiting line: \(onTerminal.stdout.debugDescription.prefix(300))"
        )

        let inPipe = try ExternalTool.run(ukeyctl, ["policy", "load", try write(3)], environment: environment)
        #expect(inPipe.status == 0 && !inPipe.stderr.contains("\r"), "\(inPipe.stderr)")
    }
}
