import Foundation
import Testing
import UkeyTesting

/// docs/architecture.md's module table is the map of Package.swift: it must name every target.
@Suite("docs/architecture.md names every module")
struct ArchitectureDocTests {
    @Test("every target of Package.swift (but the tests) is in the module table")
    func moduleTableNamesEveryTarget() throws {
        let root = PackagePaths.root()
        let manifest = try String(contentsOfFile: root + "/Package.swift", encoding: .utf8)
        let pattern = try NSRegularExpression(
            pattern: #"\.(?:target|executableTarget|systemLibrary)\(\s*name:\s*"([^"]+)""#
        )
        let targets = pattern.matches(in: manifest, range: NSRange(manifest.startIndex..., in: manifest)).compactMap {
            match in
            Range(match.range(at: 1), in: manifest).map { String(manifest[$0]) }
        }
        #expect(targets.count > 20, "read \(targets.count) targets from Package.swift")
        let document = try String(contentsOfFile: root + "/docs/architecture.md", encoding: .utf8)
        let table = try #require(
            document.range(of: "| module | what it holds |").map { start in
                document[
                    start
                        .lowerBound..<(document.range(of: "## 3.", range: start.upperBound..<document.endIndex)?
                        .lowerBound ?? document.endIndex)
                ]
            }
        )
        let missing = targets.filter { !table.contains("`\($0)`") }
        #expect(missing.isEmpty, "the module table lacks \(missing)")
    }
}
