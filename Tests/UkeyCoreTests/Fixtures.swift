import UkeyCore

/// Small trees built inside the tests, with digests derived from names so every test reads alone.
enum Fixtures {
    static func digest(_ label: String) -> Digest { Digest.of(Array(label.utf8)) }

    static func entity(_ name: String, parent: String, components: [String] = ["image"], register: Int = 8) -> Entity {
        Entity(
            name: name,
            parent: parent,
            kind: .host,
            register: register,
            components: components.map { Component(name: $0, expected: digest("\(name)/\($0)")) }
        )
    }

    /// root -> vmm -> io-vm -> loader -> kernel ; vmm -> base -> office, dev
    static func paperTree() throws -> ExpectedSet {
        try ExpectedSet(entities: [
            entity("vmm", parent: "root", components: ["kernel", "initrd", "qemu"]),
            entity("io-vm", parent: "vmm", register: 9),
            entity("loader", parent: "io-vm", register: 12),
            entity("kernel", parent: "loader", components: ["kernel", "initrd"], register: 13),
            entity("base", parent: "vmm", register: 10),
            entity("office", parent: "base", components: ["overlay"], register: 11),
            entity("dev", parent: "base", components: ["overlay"], register: 11),
        ])
    }

    /// Measures every component of `name` with its expected digest.
    @discardableResult
    static func measureGood(_ chain: inout BootChain, _ name: String) throws -> MeasurementOutcome? {
        var last: MeasurementOutcome?
        for component in chain.expected.entity(named: name)!.components {
            last = try chain.measure(entity: name, component: component.name, digest: component.expected)
        }
        return last
    }
}
