import Foundation
import UkeyPolicy

extension FuzzTarget {
    /// The policy reader (YAML through Yams, then ukey's shape rules) and the linter.
    static let policy = FuzzTarget(
        name: "policy",
        property: "a refusal names the file and a line inside it; what is taken lints, and reads the same twice",
        check: { bytes throws(FuzzFailure) in
            switch Result(catching: { () throws(PolicyError) -> Policy in
                try PolicyParser.parse(bytes: bytes, file: "fuzz.yaml")
            }) {
            case .success(let policy):
                _ = PolicyLinter.lint(policy)
                let again = try? PolicyParser.parse(bytes: bytes, file: "fuzz.yaml")
                try require(again.map(fingerprint) == fingerprint(policy), "the same bytes read to another policy")
            case .failure(let error):
                let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).count
                try require(!error.diagnostics.isEmpty, "a refusal without a diagnostic")
                for diagnostic in error.diagnostics {
                    try require(
                        diagnostic.location.file == "fuzz.yaml" && (1...lines + 1).contains(diagnostic.location.line)
                            && !diagnostic.message.isEmpty,
                        "a diagnostic outside the file: \(diagnostic)"
                    )
                }
            }
        },
        seeds: {
            ["policies/demo.yaml", "policies/kvm-host.yaml"].compactMap {
                FileManager.default.contents(atPath: $0).map(Array.init)
            }
        }
    )

    /// What a policy declares, as text, to compare two readings.
    static func fingerprint(_ policy: Policy) -> [String] {
        policy.entities.map { entity in
            "\(entity.name) \(entity.parent) \(entity.kind) \(entity.effectiveRegister) "
                + entity.components.map { "\($0.name)=\($0.digest.map { "\($0)" } ?? "-")" }.joined(separator: ",")
        } + policy.users.map { "\($0.name) \($0.roles)" }
            + policy.runtime.map { "\($0.vm) \($0.defaultDecision) \($0.allow.map(\.path))" }
    }
}
