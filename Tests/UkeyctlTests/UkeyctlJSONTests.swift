import Foundation
import Testing
import UkeyTesting

/// `--json` on the commands that work on files, after the subcommand or before it (as
/// `--socket`): one JSON object a script can read, the exit status unchanged.
@Suite("ukeyctl --json on the offline commands, and global options before the subcommand")
struct UkeyctlJSONTests {
    static func run(_ arguments: [String]) throws -> ExternalTool.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        environment["UKEY_JSON"] = nil
        return try ExternalTool.run(UkeyctlPolicyTests.binary, arguments, environment: environment)
    }

    static func object(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    @Test(
        "policy lint, show and keygen print one JSON object with --json before or after the subcommand; lint's exit status still says clean or not"
    )
    func offlineJSON() throws {
        let demo = UkeyctlPolicyTests.root + "/policies/demo.yaml"
        let lint = try Self.run(["policy", "lint", "--draft", demo, "--json"])
        #expect(
            lint.status == 0 && Self.object(lint.stdout)?["clean"] as? Bool == true,
            "\(lint.stdout) \(lint.stderr)"
        )
        let before = try Self.run(["--json", "policy", "show", demo])
        let entities = Self.object(before.stdout)?["entities"] as? [[String: Any]]
        #expect(before.status == 0 && (entities?.count ?? 0) > 0, "\(before.stdout) \(before.stderr)")

        let dir = try TemporaryDirectory("ukeyctl-json")
        try dir.write("bad.yaml", Array("version: 1\nmode: enforce\nentities: 3\n".utf8))
        let bad = try Self.run(["policy", "lint", dir.file("bad.yaml"), "--json"])
        let problems = (Self.object(bad.stdout)?["files"] as? [[String: Any]])?.first?["problems"] as? [[String: Any]]
        #expect(bad.status == 1 && (problems?.first?["line"] as? Int) != nil, "\(bad.stdout)")

        let keygen = try Self.run(["--json", "keygen", "--out", dir.file("signer")])
        #expect(
            keygen.status == 0 && Self.object(keygen.stdout)?["key"] as? String == dir.file("signer.key.pem"),
            "\(keygen.stdout)"
        )
    }

    @Test("--socket before the subcommand is the socket the command uses")
    func socketBeforeSubcommand() throws {
        let result = try Self.run(["--socket", "/nonexistent/ukeyd.sock", "status"])
        #expect(result.status == 3 && result.stderr.contains("/nonexistent/ukeyd.sock"), "\(result.stderr)")
    }
}
