import Foundation
import Testing
import UkeyFuzzTargets
import UkeyTesting

/// The regression half of the fuzzing: every input in each target's committed corpus (the seeds,
/// and every input a fuzzer found that once broke a property) still holds the property.
/// `make fuzz` is the other half: libFuzzer, coverage-guided, from the same corpus.
@Suite("fuzz corpora, replayed")
struct FuzzCorpusTests {
    static let corpus = PackagePaths.root() + "/Tests/Fuzz/Corpus"

    @Test("every corpus input holds its target's property", arguments: FuzzTarget.all.map(\.name))
    func replay(target name: String) throws {
        let target = try #require(FuzzTarget.named(name))
        let directory = Self.corpus + "/" + name
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(!files.isEmpty, "no corpus for \(name) in \(directory)")
        for file in files {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file)))
            do {
                try target.check(bytes)
            } catch {
                Issue.record("\(name)/\(file): \(error)")
            }
        }
    }

    @Test("every target's seeds hold its property and are in its committed corpus")
    func seedsAreCommitted() throws {
        for target in FuzzTarget.all {
            let seeds = target.seeds()
            #expect(!seeds.isEmpty, "\(target.name) has no seeds")
            for (index, seed) in seeds.enumerated() {
                #expect(throws: Never.self, "\(target.name) seed \(index)") { try target.check(seed) }
                // The store's seed is sealed with a random nonce, so only its presence is checked.
                let committed = Self.corpus + "/\(target.name)/seed-\(index)"
                #expect(
                    FileManager.default.fileExists(atPath: committed),
                    "\(committed) is missing (ukey-testhelper fuzz-seeds)"
                )
            }
        }
    }
}
