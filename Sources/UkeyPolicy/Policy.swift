import UkeyCore

/// A security policy as written (architecture.md section 5): the expected measurements, the users, and
/// the per-VM run-time whitelists, each with the place it was declared, so every later check can
/// point at a line.
public struct Policy: Sendable {
    /// Monotonic; a loaded policy is only ever replaced by a higher version (no rollback).
    public var version: Int
    public var mode: EnforcementMode
    public var entities: [EntityDeclaration]
    public var users: [UserDeclaration]
    public var runtime: [RuntimeRuleSet]
    /// Where the document starts, for problems that belong to no line in particular.
    public var location: SourceLocation
}

/// An entity of the boot chain as the policy declares it.
public struct EntityDeclaration: Sendable {
    public var name: String
    public var parent: String
    public var kind: EntityKind
    /// Nil means the kind's default (`EntityKind.defaultRegister`).
    public var register: Int?
    public var components: [ComponentDeclaration]
    public var location: SourceLocation
    public var parentLocation: SourceLocation
    public var registerLocation: SourceLocation?
    /// The VM has a vTPM that ukeyd runs (`vtpm: true`): its domain must name ukeyd's vTPM
    /// socket, and ukeyd starts the vTPM only when the VM's chain is trusted.
    public var vtpm: Bool = false

    /// The register this entity extends.
    public var effectiveRegister: Int { register ?? kind.defaultRegister }
}

/// A component with its expected digest, or a `file` hint from which enrolment computes it.
public struct ComponentDeclaration: Sendable {
    public var name: String
    public var digest: Digest?
    /// Where the hypervisor finds this component on the host.
    public var file: String?
    /// The VM's own state (its disk, its NVRAM): `digest` is its first known-good content, and
    /// ukeyd seals what it holds at every stop of the VM; the next start must find that.
    public var writable: Bool = false
    public var location: SourceLocation

    public init(name: String, digest: Digest?, file: String?, writable: Bool = false, location: SourceLocation) {
        self.name = name
        self.digest = digest
        self.file = file
        self.writable = writable
        self.location = location
    }
}

/// A person who may log in and start user VMs.
public struct UserDeclaration: Sendable {
    public var name: String
    public var roles: [String]
    /// The user VMs this user may start, each with where it was named.
    public var vms: [(name: String, location: SourceLocation)]
    public var location: SourceLocation
}

/// Whether an executable runs.
public enum ExecDecision: String, Sendable, Hashable, Codable, CaseIterable {
    case allow
    case deny
}

/// Whether an exec guard judges the scripts interpreters read (python3 script.py) as it judges
/// programs: `check` (the default) or `allow`, which a rule set must say, and whose load is
/// recorded in the audit log.
public enum InterpreterRule: String, Sendable, Hashable, Codable, CaseIterable {
    case check
    case allow
}

/// One VM's run-time whitelist.
public struct RuntimeRuleSet: Sendable {
    public var vm: String
    /// What an executable the list does not name gets.
    public var defaultDecision: ExecDecision
    public var allow: [AllowedExecutable]
    /// A large list kept in a file beside the policy, pinned by digest.
    public var allowList: AllowListReference?
    /// What an exec guard answers when it cannot ask ukeyd in time; nil: by the mode (deny when
    /// enforcing, allow in audit mode).
    public var onTimeout: ExecDecision? = nil
    /// Whether the VM's guard judges what interpreters read; nil means `check`.
    public var interpreters: InterpreterRule? = nil
    public var location: SourceLocation
    public var vmLocation: SourceLocation
}

/// An executable allowed by path and digest.
public struct AllowedExecutable: Sendable, Hashable {
    public var path: String
    public var digest: Digest
    public var location: SourceLocation
}
