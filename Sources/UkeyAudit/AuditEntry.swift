/// Who caused a record, as the kernel vouched for the caller (SO_PEERCRED), or the daemon itself.
public struct AuditActor: Sendable, Hashable {
    public let uid: UInt32
    public let pid: Int32
    /// The caller's strongest role ("admin", "hypervisor", "user"), or "daemon".
    public let role: String

    public init(uid: UInt32, pid: Int32, role: String) {
        self.uid = uid
        self.pid = pid
        self.role = role
    }

    /// ukeyd acting on its own (start, stop, a reload on SIGHUP).
    public static var daemon: AuditActor {
        AuditActor(uid: UInt32(truncatingIfNeeded: getuid()), pid: getpid(), role: "daemon")
    }
}

/// What a caller asks to record; the log adds `seq`, `time`, `prev` and `hash`.
public struct AuditEntry: Sendable, Hashable {
    public let type: String
    public let actor: AuditActor?
    public let subject: [String: AuditValue]

    public init(type: String, actor: AuditActor?, subject: [String: AuditValue] = [:]) {
        self.type = type
        self.actor = actor
        self.subject = subject
    }
}

#if canImport(Glibc)
import Glibc
#endif
