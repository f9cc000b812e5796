import UkeyCore

/// What a new policy changes against an old one, for review before it is signed
/// (`ukeyctl policy diff OLD NEW`): entities, their digests, users, and whitelist entries.
public struct PolicyDiff: Sendable {
    public enum Change: Sendable, Hashable {
        case added(String)
        case removed(String)
        case changed(String)
    }

    /// Changes in a stable order: header, entities, users, runtime.
    public private(set) var changes: [Change] = []

    public var isEmpty: Bool { changes.isEmpty }

    public init(old: Policy, new: Policy) {
        if old.mode != new.mode { changes.append(.changed("mode \(old.mode.rawValue) -> \(new.mode.rawValue)")) }
        diffEntities(old.entities, new.entities)
        diffUsers(old.users, new.users)
        diffRuntime(old.runtime, new.runtime)
        if new.version < old.version {
            changes.insert(
                .changed("WARNING: version \(new.version) is below \(old.version); ukeyd will refuse it (no rollback)"),
                at: 0
            )
        }
        if old.version != new.version {
            changes.insert(.changed("version \(old.version) -> \(new.version)"), at: 0)
        } else if !changes.isEmpty {
            changes.insert(
                .changed(
                    "WARNING: version \(new.version) is not above \(old.version); ukeyd will refuse it (no rollback)"
                ),
                at: 0
            )
        }
    }

    private mutating func diffEntities(_ old: [EntityDeclaration], _ new: [EntityDeclaration]) {
        let before = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(new.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for entity in new where before[entity.name] == nil {
            changes.append(
                .added(
                    "entity \(entity.name) (\(entity.kind.rawValue), parent \(entity.parent), register \(entity.effectiveRegister), \(entity.components.count) component(s))"
                )
            )
        }
        for entity in old where after[entity.name] == nil { changes.append(.removed("entity \(entity.name)")) }
        for entity in new {
            guard let was = before[entity.name] else { continue }
            let name = "entity \(entity.name)"
            if was.parent != entity.parent {
                changes.append(.changed("\(name): parent \(was.parent) -> \(entity.parent)"))
            }
            if was.kind != entity.kind {
                changes.append(.changed("\(name): kind \(was.kind.rawValue) -> \(entity.kind.rawValue)"))
            }
            if was.effectiveRegister != entity.effectiveRegister {
                changes.append(.changed("\(name): register \(was.effectiveRegister) -> \(entity.effectiveRegister)"))
            }
            let components = Dictionary(was.components.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            let names = Set(entity.components.map(\.name))
            for component in entity.components {
                guard let old = components[component.name] else {
                    changes.append(
                        .added(
                            "\(name): component \(component.name) \(component.digest?.description ?? "(digest from file at enrolment)")"
                        )
                    )
                    continue
                }
                if old.digest != component.digest {
                    changes.append(
                        .changed(
                            "\(name)/\(component.name): digest \(old.digest?.description ?? "none") -> \(component.digest?.description ?? "none")"
                        )
                    )
                }
                if old.file != component.file {
                    changes.append(
                        .changed("\(name)/\(component.name): file \(old.file ?? "none") -> \(component.file ?? "none")")
                    )
                }
            }
            for component in was.components where !names.contains(component.name) {
                changes.append(.removed("\(name): component \(component.name)"))
            }
        }
    }

    private mutating func diffUsers(_ old: [UserDeclaration], _ new: [UserDeclaration]) {
        let before = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Set(new.map(\.name))
        for user in new {
            guard let was = before[user.name] else {
                changes.append(
                    .added(
                        "user \(user.name) (roles \(user.roles.joined(separator: ",")); may start \(user.vms.map(\.name).joined(separator: ",")))"
                    )
                )
                continue
            }
            if Set(was.roles) != Set(user.roles) {
                changes.append(
                    .changed(
                        "user \(user.name): roles \(was.roles.joined(separator: ",")) -> \(user.roles.joined(separator: ","))"
                    )
                )
            }
            let vmsBefore = Set(was.vms.map(\.name))
            let vmsAfter = Set(user.vms.map(\.name))
            for vm in vmsAfter.subtracting(vmsBefore).sorted() {
                changes.append(.added("user \(user.name) may start \(vm)"))
            }
            for vm in vmsBefore.subtracting(vmsAfter).sorted() {
                changes.append(.removed("user \(user.name) may start \(vm)"))
            }
        }
        for user in old where !after.contains(user.name) { changes.append(.removed("user \(user.name)")) }
    }

    private mutating func diffRuntime(_ old: [RuntimeRuleSet], _ new: [RuntimeRuleSet]) {
        let before = Dictionary(old.map { ($0.vm, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Set(new.map(\.vm))
        for rules in new {
            let name = "whitelist \(rules.vm)"
            guard let was = before[rules.vm] else {
                changes.append(
                    .added(
                        "\(name) (default \(rules.defaultDecision.rawValue), \(rules.allow.count) entries\(rules.allowList.map { " + allow-list \($0.file)" } ?? "")\(rules.onTimeout.map { ", on-timeout \($0.rawValue)" } ?? ""))"
                    )
                )
                continue
            }
            if was.defaultDecision != rules.defaultDecision {
                changes.append(
                    .changed("\(name): default \(was.defaultDecision.rawValue) -> \(rules.defaultDecision.rawValue)")
                )
            }
            if was.onTimeout != rules.onTimeout {
                // What a guard does when ukeyd cannot answer: a reviewer must see it change.
                let describe = { (d: ExecDecision?) in d?.rawValue ?? "by the mode" }
                changes.append(
                    .changed("\(name): on-timeout \(describe(was.onTimeout)) -> \(describe(rules.onTimeout))")
                )
            }
            let entriesBefore = Set(was.allow.map { "\($0.path) \($0.digest)" })
            let entriesAfter = Set(rules.allow.map { "\($0.path) \($0.digest)" })
            for entry in entriesAfter.subtracting(entriesBefore).sorted() {
                changes.append(.added("\(name): allow \(entry)"))
            }
            for entry in entriesBefore.subtracting(entriesAfter).sorted() {
                changes.append(.removed("\(name): allow \(entry)"))
            }
            if was.allowList?.file != rules.allowList?.file || was.allowList?.digest != rules.allowList?.digest {
                let describe = { (l: AllowListReference?) in l.map { "\($0.file) (\($0.digest))" } ?? "none" }
                changes.append(
                    .changed("\(name): allow-list \(describe(was.allowList)) -> \(describe(rules.allowList))")
                )
            }
        }
        for rules in old where !after.contains(rules.vm) { changes.append(.removed("whitelist \(rules.vm)")) }
    }
}
