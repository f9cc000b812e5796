import UkeyCore

/// Checks the relations inside a parsed policy: that the entities form one tree under `root`, that
/// every reference names something declared, that registers are usable, and (for a policy meant to
/// be loaded) that every component has a digest.
public enum PolicyLinter {
    /// Registers 0-7 are extended by platform firmware (TCG PC Client PFP, section 3.3.4); a policy
    /// that reused them would mix ukey's measurements into the firmware's.
    public static let allowedRegisters = 8...23

    public struct Options: Sendable {
        /// A policy to be loaded must carry every digest; a draft awaiting `policy enroll` need not.
        public var requireDigests: Bool
        public init(requireDigests: Bool = true) { self.requireDigests = requireDigests }
    }

    public static func lint(_ policy: Policy, options: Options = Options()) -> [PolicyDiagnostic] {
        var problems: [PolicyDiagnostic] = []
        func problem(_ location: SourceLocation, _ message: String) {
            problems.append(PolicyDiagnostic(location, message))
        }

        // Entities: names, registers, components.
        var entities: [String: EntityDeclaration] = [:]
        for entity in policy.entities {
            if entity.name == Entity.rootName {
                problem(entity.location, "'root' is the trusted root itself; it is implicit and cannot be declared")
                continue
            }
            if let first = entities[entity.name] {
                problem(
                    entity.location,
                    "duplicate entity '\(entity.name)' (first declared at line \(first.location.line))"
                )
                continue
            }
            entities[entity.name] = entity
            if let register = entity.register, !allowedRegisters.contains(register) {
                let why = register < 8 ? "registers 0-7 belong to platform firmware" : "registers go up to 23"
                problem(
                    entity.registerLocation ?? entity.location,
                    "register \(register) of '\(entity.name)' is out of range: \(why); use 8-23"
                )
            }
            if entity.components.isEmpty {
                problem(
                    entity.location,
                    "entity '\(entity.name)' has no components; nothing could ever make it trusted"
                )
            }
            var components: [String: SourceLocation] = [:]
            for component in entity.components {
                if let first = components[component.name] {
                    problem(
                        component.location,
                        "duplicate component '\(component.name)' in '\(entity.name)' (first at line \(first.line))"
                    )
                }
                components[component.name] = component.location
                if component.digest == nil && component.file == nil {
                    problem(
                        component.location,
                        "component '\(component.name)' of '\(entity.name)' has neither a digest nor a file"
                    )
                } else if component.digest == nil && options.requireDigests {
                    problem(
                        component.location,
                        "component '\(component.name)' of '\(entity.name)' has no digest; "
                            + "run 'ukeyctl policy enroll' to compute it from \(component.file ?? "its file")"
                    )
                }
            }
        }

        // Parents: each must exist, and following parents must reach root (no cycles).
        for entity in policy.entities where entities[entity.name]?.location == entity.location {
            guard entity.parent == Entity.rootName || entities[entity.parent] != nil else {
                var message = "entity '\(entity.name)' names unknown parent '\(entity.parent)'"
                if let near = YAMLNodeReader.closest(to: entity.parent, in: [Entity.rootName] + entities.keys.sorted())
                {
                    message += "; did you mean '\(near)'?"
                }
                problem(entity.parentLocation, message)
                continue
            }
            var seen: [String] = [entity.name]
            var current = entity.parent
            while current != Entity.rootName, let next = entities[current] {
                if current == entity.name {
                    problem(
                        entity.parentLocation,
                        "entity '\(entity.name)' is on a cycle (\((seen + [current]).joined(separator: " -> "))); "
                            + "every chain must end at 'root'"
                    )
                    break
                }
                if seen.contains(current) { break }  // a cycle above us; reported at its own members
                seen.append(current)
                current = next.parent
            }
        }

        // Writable state belongs to one VM: an entity others are loaded over (a parent OS image)
        // changes under them if it is written, so none of its components may be writable.
        let parents = Set(policy.entities.map(\.parent))
        for entity in policy.entities where entities[entity.name]?.location == entity.location {
            for component in entity.components where component.writable {
                if parents.contains(entity.name) {
                    problem(
                        component.location,
                        "component '\(component.name)' of '\(entity.name)' is writable, but '\(entity.name)' is the parent of other entities: a parent image is never writable (its children would be loaded over a changing image)"
                    )
                } else if entity.kind == .baseImage || entity.kind == .host {
                    problem(
                        component.location,
                        "component '\(component.name)' of '\(entity.name)' is writable, but a \(entity.kind) entity is never writable; only a VM's own disks and NVRAM are"
                    )
                }
            }
        }

        // Users.
        var users: [String: SourceLocation] = [:]
        for user in policy.users {
            if let first = users[user.name] {
                problem(user.location, "duplicate user '\(user.name)' (first at line \(first.line))")
            }
            users[user.name] = user.location
            for vm in user.vms where entities[vm.name] == nil {
                problem(vm.location, "user '\(user.name)' may start unknown VM '\(vm.name)'")
            }
        }

        // Run-time whitelists.
        var ruleSets: [String: SourceLocation] = [:]
        for ruleSet in policy.runtime {
            if let first = ruleSets[ruleSet.vm] {
                problem(
                    ruleSet.vmLocation,
                    "duplicate runtime rules for VM '\(ruleSet.vm)' (first at line \(first.line))"
                )
            }
            ruleSets[ruleSet.vm] = ruleSet.vmLocation
            if entities[ruleSet.vm] == nil {
                problem(ruleSet.vmLocation, "runtime rules for unknown VM '\(ruleSet.vm)'")
            }
            var seen: Set<AllowRuleKey> = []
            for rule in ruleSet.allow where !seen.insert(AllowRuleKey(path: rule.path, digest: rule.digest)).inserted {
                problem(rule.location, "'\(rule.path)' with this digest is listed twice for VM '\(ruleSet.vm)'")
            }
        }
        return problems.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
    }

    private struct AllowRuleKey: Hashable {
        let path: String
        let digest: Digest
    }
}
