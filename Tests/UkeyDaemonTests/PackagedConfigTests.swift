import Foundation
import Testing
import UkeyConfig
import UkeyDaemon
import UkeyTesting

/// The commented default configuration the package installs as /etc/ukey/ukeyd.toml: every
/// setting ukeyd knows is in it, and every value it shows is one ukeyd takes.
@Suite("the packaged ukeyd.toml")
struct PackagedConfigTests {
    static let path = PackagePaths.root() + "/packaging/ukeyd.toml"

    @Test(
        "it parses as shipped (all commented), names every known setting in its section, and its values apply when uncommented"
    )
    func documentsEverySetting() throws {
        let text = try String(contentsOfFile: Self.path, encoding: .utf8)
        var shipped = DaemonSettings()
        try shipped.apply(try ConfigFile(parsing: text))
        #expect(shipped == DaemonSettings(), "the shipped file changes a default")

        var section = ""
        var documented: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("[") {
                section = String(line.dropFirst().dropLast())
            } else if let match = line.wholeMatch(of: /# ([a-z0-9-]+) = (.*)/) {
                documented.insert("\(section).\(match.1)")
                // Each value alone (sm2-id beside the algorithm it belongs to) is one ukeyd takes.
                let companion = match.1 == "sm2-id" ? "algorithm = \"sm2\"\n" : ""
                var applied = DaemonSettings()
                #expect(throws: Never.self, "\(section).\(match.1)") {
                    try applied.apply(try ConfigFile(parsing: "[\(section)]\n\(companion)\(line.dropFirst(2))\n"))
                }
            }
        }
        #expect(
            documented == DaemonSettings.known,
            "missing: \(DaemonSettings.known.subtracting(documented).sorted()); unknown: \(documented.subtracting(DaemonSettings.known).sorted())"
        )
    }
}
