import ArgumentParser
import UkeyPolicy
import UkeyVarlink

/// `ukeyctl policy diff OLD NEW`: what signing NEW would change, for the reviewer.
struct PolicyDiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what a new policy changes against an old one: entities, digests, users, whitelist entries."
    )

    @Argument(help: "The policy in force (or the previous one).") var old: String
    @Argument(help: "The new policy.") var new: String
    @OptionGroup var output: JSONOutput

    func run() throws {
        let diff = PolicyDiff(old: try PolicyFiles.load(old), new: try PolicyFiles.load(new))
        if output.json {
            output.emit([
                "changes": .array(
                    diff.changes.map { change in
                        switch change {
                        case .added(let text): .object(["change": "added", "what": .string(text)])
                        case .removed(let text): .object(["change": "removed", "what": .string(text)])
                        case .changed(let text): .object(["change": "changed", "what": .string(text)])
                        }
                    }
                )
            ])
            return
        }
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
