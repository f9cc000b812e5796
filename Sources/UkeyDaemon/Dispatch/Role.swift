#if canImport(Glibc)
import Glibc
#endif

/// Who may call what (DESIGN.md section 4), decided from the peer's credentials (SO_PEERCRED).
public enum Role: String, Sendable, Hashable, CaseIterable {
    /// Provisioning: uid 0 or a member of the admin group.
    case admin
    /// The hypervisor side (libvirt hook, host boot script): uid 0 or the hypervisor group.
    case hypervisor
    /// Anyone allowed to connect to the socket.
    case user
}

/// The peer of a connection, as the kernel vouches for it.
public struct Caller: Sendable, Hashable {
    public let uid: UInt32
    public let gid: UInt32
    public let pid: Int32
    public let roles: Set<Role>

    public init(uid: UInt32, gid: UInt32, pid: Int32, roles: Set<Role>) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.roles = roles
    }
}

/// Maps credentials to roles using the configured groups.
public struct RolePolicy: Sendable {
    public var adminGroup: String?
    public var hypervisorGroup: String?

    public init(adminGroup: String? = "ukey-admin", hypervisorGroup: String? = "libvirt-qemu") {
        self.adminGroup = adminGroup
        self.hypervisorGroup = hypervisorGroup
    }

    public func roles(uid: UInt32, gid: UInt32) -> Set<Role> {
        var roles: Set<Role> = [.user]
        if uid == 0 { return [.admin, .hypervisor, .user] }
        let groups = Self.groups(uid: uid, primary: gid)
        if let adminGroup, let id = Self.groupID(adminGroup), groups.contains(id) { roles.insert(.admin) }
        if let hypervisorGroup, let id = Self.groupID(hypervisorGroup), groups.contains(id) { roles.insert(.hypervisor) }
        return roles
    }

    static func groupID(_ name: String) -> gid_t? {
        guard let entry = getgrnam(name) else { return nil }
        return entry.pointee.gr_gid
    }

    /// The user's primary and supplementary groups, from the group database.
    static func groups(uid: UInt32, primary: UInt32) -> Set<gid_t> {
        guard let passwd = getpwuid(uid) else { return [primary] }
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(passwd.pointee.pw_name, primary, &list, &count) == -1 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(passwd.pointee.pw_name, primary, &list, &count)
        }
        return Set(list.prefix(Int(max(0, count)))).union([primary])
    }
}
