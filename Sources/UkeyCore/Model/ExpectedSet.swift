/// The expected-digest set H with the `parent` relation: a validated tree of entities under `root`.
///
/// Construction refuses anything that is not a tree (duplicate names, unknown parents, cycles,
/// components without a name or duplicated), so the boot chain never has to guess.
public struct ExpectedSet: Sendable {
    /// The number of registers in a bank (TCG PC Client: 24 PCRs).
    public static let registerCount = 24

    /// Entities in an order where every parent comes before its children.
    public let entities: [Entity]
    private let index: [String: Int]
    private let childNames: [String: [String]]

    public init(entities declared: [Entity]) throws(UkeyCoreError) {
        var byName: [String: Entity] = [:]
        for entity in declared {
            guard entity.name != Entity.rootName else {
                throw UkeyCoreError(.invalidEntityTree, "'root' is the trusted root itself and cannot be declared")
            }
            guard !entity.name.isEmpty else {
                throw UkeyCoreError(.invalidEntityTree, "an entity has an empty name")
            }
            guard byName[entity.name] == nil else {
                throw UkeyCoreError(.invalidEntityTree, "entity '\(entity.name)' is declared twice")
            }
            guard (0..<Self.registerCount).contains(entity.register) else {
                throw UkeyCoreError(
                    .invalidRegister,
                    "entity '\(entity.name)' uses register \(entity.register); registers are 0-\(Self.registerCount - 1)"
                )
            }
            guard !entity.components.isEmpty else {
                throw UkeyCoreError(.invalidEntityTree, "entity '\(entity.name)' has no components to measure")
            }
            var seen: Set<String> = []
            for component in entity.components where !seen.insert(component.name).inserted {
                throw UkeyCoreError(
                    .invalidEntityTree,
                    "entity '\(entity.name)' declares component '\(component.name)' twice"
                )
            }
            byName[entity.name] = entity
        }
        for entity in declared where entity.parent != Entity.rootName && byName[entity.parent] == nil {
            throw UkeyCoreError(
                .invalidEntityTree,
                "entity '\(entity.name)' names parent '\(entity.parent)', which is not declared"
            )
        }
        // Order parents before children; whatever cannot be placed sits on a cycle.
        var ordered: [Entity] = []
        var placed: Set<String> = [Entity.rootName]
        var remaining = declared
        while !remaining.isEmpty {
            let ready = remaining.filter { placed.contains($0.parent) }
            guard !ready.isEmpty else {
                let names = remaining.map(\.name).sorted().joined(separator: ", ")
                throw UkeyCoreError(.invalidEntityTree, "entities \(names) form a cycle and never reach 'root'")
            }
            ordered += ready
            for entity in ready { placed.insert(entity.name) }
            remaining.removeAll { placed.contains($0.name) }
        }
        var children: [String: [String]] = [:]
        for entity in ordered { children[entity.parent, default: []].append(entity.name) }
        self.entities = ordered
        self.childNames = children
        self.index = Dictionary(uniqueKeysWithValues: ordered.enumerated().map { ($1.name, $0) })
    }

    public func entity(named name: String) -> Entity? {
        index[name].map { entities[$0] }
    }

    /// Direct children of `name` (which may be `root`), in declaration order.
    public func children(of name: String) -> [String] {
        childNames[name] ?? []
    }

    /// Every entity below `name`, depth first.
    public func descendants(of name: String) -> [String] {
        var out: [String] = []
        var stack = children(of: name).reversed() as [String]
        while let next = stack.popLast() {
            out.append(next)
            stack += children(of: next).reversed()
        }
        return out
    }

    /// The ancestors of `name` from its parent up to and including `root`: the paper's Omega.
    public func ancestors(of name: String) -> [String] {
        var out: [String] = []
        var current = entity(named: name)?.parent
        while let name = current {
            out.append(name)
            current = entity(named: name)?.parent
        }
        return out
    }
}
