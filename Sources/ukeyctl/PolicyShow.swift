import ArgumentParser
import UkeyCore
import UkeyPolicy
import UkeyVarlink

/// `ukeyctl policy show FILE`: the entity tree, users and whitelists of a policy.
struct PolicyShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a policy's entity tree, its users and its run-time whitelists."
    )

    @Argument(help: "The policy file.")
    var file: String

    @OptionGroup var output: JSONOutput

    func run() throws {
        let (policy, expected) = try PolicyFiles.loadForUse(file)
        if output.json {
            output.emit(Self.json(policy, expected))
            return
        }
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

    /// The policy as `--json` prints it: its entities in chain order (each with its register,
    /// components and expected digests), its users and its whitelists' sizes.
    static func json(_ policy: Policy, _ expected: ExpectedSet) -> [String: JSONValue] {
        let vtpm = Set(policy.entities.filter(\.vtpm).map(\.name))
        return [
            "version": .int(policy.version), "mode": .string(policy.mode.rawValue),
            "entities": .array(
                expected.entities.map { entity in
                    .object([
                        "name": .string(entity.name), "parent": .string(entity.parent),
                        "kind": .string(entity.kind.rawValue), "register": .int(entity.register),
                        "vtpm": .bool(vtpm.contains(entity.name)),
                        "components": .array(
                            entity.components.map {
                                .object([
                                    "name": .string($0.name), "digest": .string($0.expected.description),
                                    "writable": .bool($0.writable),
                                ])
                            }
                        ),
                    ])
                }
            ),
            "users": .array(
                policy.users.map {
                    .object([
                        "name": .string($0.name), "roles": .array($0.roles.map { .string($0) }),
                        "vms": .array($0.vms.map { .string($0.name) }),
                    ])
                }
            ),
            "runtime": .array(
                policy.runtime.map {
                    .object([
                        "vm": .string($0.vm), "allowed": .int($0.allow.count),
                        "default": .string($0.defaultDecision.rawValue),
                    ])
                }
            ),
        ]
    }
}
