import ArgumentParser
import UkeyPolicy

/// `ukeyctl policy diff OLD NEW`: what signing NEW would change, for the reviewer.
struct PolicyDiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what a new policy changes against an old one: entities, digests, users, whitelist entries."
    )

    @Argument(help: "The policy in force (or the previous one).") var old: String
    @Argument(help: "The new policy.") var new: String

    func run() throws {
        let diff = PolicyDiff(old: try PolicyFiles.load(old), new: try PolicyFiles.load(new))
        guard !diff.isEmpty else {
            print("no changes")
            return
        }
        for change in diff.changes {
            switch change {
            case .added(let text): print(Style.green.apply("+ \(text)"))
            case .removed(let text): print(Style.red.apply("- \(text)"))
            case .changed(let text): print("~ \(text)")
            }
        }
    }
}
