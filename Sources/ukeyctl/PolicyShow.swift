import ArgumentParser
import UkeyCore
import UkeyPolicy

/// `ukeyctl policy show FILE`: the entity tree, users and whitelists of a policy.
struct PolicyShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a policy's entity tree, its users and its run-time whitelists."
    )

    @Argument(help: "The policy file.")
    var file: String

    func run() throws {
        let (policy, expected) = try PolicyFiles.loadForUse(file)
        print("policy \(file): version \(policy.version), mode \(policy.mode.rawValue)\n")
        print(ChainTree(expected: expected, chain: nil).render())
        if !policy.users.isEmpty {
            print("\nusers:")
            for user in policy.users {
                print(
                    "  \(user.name)  roles: \(user.roles.joined(separator: ", "))  may start: \(user.vms.map(\.name).joined(separator: ", "))"
                )
            }
        }
        if !policy.runtime.isEmpty {
            print("\nrun-time whitelists:")
            for rules in policy.runtime {
                print("  \(rules.vm): \(rules.allow.count) allowed, default \(rules.defaultDecision.rawValue)")
            }
        }
    }
}
