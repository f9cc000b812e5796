import UkeyCore

/// Draws an entity tree, with each entity's state when there is one: the shape of the paper's
/// Omega at a glance. Fed from a policy (offline) or from the daemon's `Boot.Chain`.
struct ChainTree {
    struct Node {
        let name: String
        let parent: String
        let kind: String
        let register: Int
        /// The right-hand column: a state badge, or the component names.
        let detail: String
    }

    let nodes: [Node]

    /// A policy's tree, with states from `chain` when given.
    init(expected: ExpectedSet, chain: BootChain?) {
        nodes = expected.entities.map { entity in
            let detail: String
            if let chain, let status = chain.status(of: entity.name) {
                detail = Self.badge(state: status.state, reason: status.reason?.rawValue, matched: status.matched.count)
            } else {
                detail = Style.dim.apply(entity.components.map(\.name).joined(separator: ", "))
            }
            return Node(
                name: entity.name,
                parent: entity.parent,
                kind: entity.kind.rawValue,
                register: entity.register,
                detail: detail
            )
        }
    }

    init(nodes: [Node]) {
        self.nodes = nodes
    }

    func render() -> String {
        var lines = [Style.bold.apply("root") + Style.dim.apply("  (trusted root, s1)")]
        draw(parent: Entity.rootName, prefix: "", into: &lines)
        return lines.joined(separator: "\n")
    }

    private func draw(parent: String, prefix: String, into lines: inout [String]) {
        let children = nodes.filter { $0.parent == parent }
        for (index, node) in children.enumerated() {
            let last = index == children.count - 1
            var line = prefix + (last ? "└── " : "├── ") + Style.bold.apply(node.name)
            line += Style.dim.apply("  [\(node.kind), register \(node.register)]") + "  " + node.detail
            lines.append(line)
            draw(parent: node.name, prefix: prefix + (last ? "    " : "│   "), into: &lines)
        }
    }

    static func badge(state: EntityState, reason: String?, matched: Int?) -> String {
        switch state {
        case .trusted: Style.green.apply("✔ trusted")
        case .pending: Style.yellow.apply("… pending" + (matched.map { " (\($0) matched)" } ?? ""))
        case .untrusted: Style.red.apply("✘ untrusted: \(reason ?? "?")")
        }
    }
}
