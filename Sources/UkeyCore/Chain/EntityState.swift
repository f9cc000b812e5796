/// Where an entity stands in the current boot.
public enum EntityState: String, Hashable, Sendable, Codable {
    /// Not every component has been measured yet, and nothing has gone wrong.
    case pending
    /// Every component matched its expected digest, each measured while the parent was trusted.
    case trusted
    /// The chain is broken at or above this entity; final until the next boot.
    case untrusted
}

/// Why an entity is untrusted: the first cause wins and is never overwritten within a boot.
public enum UntrustedReason: String, Hashable, Sendable, Codable {
    /// A component was measured while the parent was not trusted (the chain was broken).
    case parentNotTrusted = "parent-not-trusted"
    /// A component's digest differed from the expected one.
    case digestMismatch = "digest-mismatch"
    /// An ancestor became untrusted, which taints everything it loads.
    case ancestorUntrusted = "ancestor-untrusted"
    /// A writable component (the VM's own disk) is not what ukeyd sealed when the VM last
    /// stopped: it was changed while the VM was not running, an older copy was put back, or the
    /// host stopped without the VM's release. Unlike the others it lasts until the VM's release:
    /// the seal, not the boot, is what refuses the next start (until `ukeyctl vm accept`).
    case changedSinceStop = "changed-since-stop"
}

/// Whether the hypervisor is told to refuse untrusted entities or only to record them.
public enum EnforcementMode: String, Hashable, Sendable, Codable, CaseIterable {
    /// Untrusted entities get `load: false`.
    case enforce
    /// Everything gets `load: true`; verdicts are still recorded.
    case audit
}

/// An entity's standing in the current boot, with what was measured for it.
public struct EntityStatus: Hashable, Sendable {
    public internal(set) var state: EntityState = .pending
    public internal(set) var reason: UntrustedReason? = nil
    /// The latest digest measured for each component in this boot.
    public internal(set) var measured: [String: Digest] = [:]
    /// Components that matched while the parent was trusted.
    public internal(set) var matched: Set<String> = []

    /// A fresh entity: pending, nothing measured.
    public init() {}
}
