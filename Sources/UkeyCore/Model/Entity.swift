/// One element of the paper's set S: something that boots on the host, with the expected digest of
/// each of its parts (the set H) and the entity that loads it (`parent(s)`).
public struct Entity: Hashable, Sendable {
    /// The name of the trusted root, s_1. It is implicit: never declared, never measured.
    public static let rootName = "root"

    public let name: String
    /// The entity that validates and loads this one; `root` for the first level.
    public let parent: String
    public let kind: EntityKind
    /// The measurement register this entity's components extend.
    public let register: Int
    public let components: [Component]

    public init(name: String, parent: String, kind: EntityKind, register: Int? = nil, components: [Component]) {
        self.name = name
        self.parent = parent
        self.kind = kind
        self.register = register ?? kind.defaultRegister
        self.components = components
    }

    public func component(named name: String) -> Component? {
        components.first { $0.name == name }
    }
}

/// A part of an entity that is measured on its own: a kernel, an initrd, a disk image, a command line.
public struct Component: Hashable, Sendable {
    public let name: String
    /// The digest this component must have; an element of H. For a writable component, its
    /// first known-good state: what it must hold until ukeyd seals another at a stop.
    public let expected: Digest
    /// The VM's own state (a disk the guest writes): its expected digest at a start is the one
    /// ukeyd sealed at the VM's last stop, given with the measurement (`BootChain.measure`).
    public let writable: Bool

    public init(name: String, expected: Digest, writable: Bool = false) {
        self.name = name
        self.expected = expected
        self.writable = writable
    }
}
