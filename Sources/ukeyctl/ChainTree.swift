import UkeyCore

/// Draws the entity tree of a policy, with each entity's state when a boot chain is given:
/// the shape of the paper's Omega at a glance.
struct ChainTree {
    let expected: ExpectedSet
    let chain: BootChain?

    func render() -> String {
        var lines = [Style.bold.apply("root") + Style.dim.apply("  (trusted root, s1)")]
        draw(children: expected.children(of: Entity.rootName), prefix: "", into: &lines)
        return lines.joined(separator: "\n")
    }

    private func draw(children: [String], prefix: String, into lines: inout [String]) {
        for (index, name) in children.enumerated() {
            let last = index == children.count - 1
            guard let entity = expected.entity(named: name) else { continue }
            var line = prefix + (last ? "└── " : "├── ") + Style.bold.apply(name)
            line += Style.dim.apply("  [\(entity.kind), register \(entity.register)]")
            if let chain, let status = chain.status(of: name) {
                line += "  " + Self.badge(status)
            } else {
                line += Style.dim.apply("  " + entity.components.map(\.name).joined(separator: ", "))
            }
            lines.append(line)
            draw(children: expected.children(of: name), prefix: prefix + (last ? "    " : "│   "), into: &lines)
        }
    }

    static func badge(_ status: EntityStatus) -> String {
        switch status.state {
        case .trusted: Style.green.apply("✔ trusted")
        case .pending: Style.yellow.apply("… pending (\(status.matched.count) matched)")
        case .untrusted: Style.red.apply("✘ untrusted: \(status.reason?.rawValue ?? "?")")
        }
    }
}
