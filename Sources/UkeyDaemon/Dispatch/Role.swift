#if canImport(Glibc)
import Glibc
#endif

/// The peer of a connection, as the kernel vouches for it.
public struct Caller: Sendable, Hashable {
    public let uid: UInt32
    public let gid: UInt32
    public let pid: Int32
    public let roles: Set<Role>
    /// The VM whose guard channel the call came in on (`GuestChannels`): its calls are about
    /// that VM only, whatever they say.
    public let guest: String?

    public init(uid: UInt32, gid: UInt32, pid: Int32, roles: Set<Role>, guest: String? = nil) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.roles = roles
        self.guest = guest
    }
}

/// Maps credentials to roles using the configured groups and the groups the peer held when it
/// connected (SO_PEERGROUPS), not what the group database says of its user.
public struct RolePolicy: Sendable {
    public var adminGroup: String?
    public var hypervisorGroup: String?

    public init(adminGroup: String? = "ukey-admin", hypervisorGroup: String? = "libvirt-qemu") {
        self.adminGroup = adminGroup
        self.hypervisorGroup = hypervisorGroup
    }

    /// Roles of a peer with `uid`, primary group `gid` and supplementary `groups`.
    public func roles(uid: UInt32, gid: UInt32, groups: [UInt32]) -> Set<Role> {
        if uid == 0 { return [.admin, .hypervisor, .user] }
        var roles: Set<Role> = [.user]
        let held = Set(groups).union([gid])
        if let adminGroup, let id = Self.groupID(adminGroup), held.contains(id) { roles.insert(.admin) }
        if let hypervisorGroup, let id = Self.groupID(hypervisorGroup), held.contains(id) { roles.insert(.hypervisor) }
        return roles
    }

    /// A group's id by name, with the reentrant lookup: connections are served on many threads,
    /// and `getgrnam`'s static buffer may be overwritten by another thread's call.
    public static func groupID(_ name: String) -> gid_t? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var size = 1024
        while size <= 1 << 20 {
            var buffer = [CChar](repeating: 0, count: size)
            let status = getgrnam_r(name, &entry, &buffer, buffer.count, &result)
            if status == ERANGE {
                size *= 4
                continue
            }
            guard status == 0, result != nil else { return nil }
            return entry.gr_gid
        }
        return nil
    }
}
