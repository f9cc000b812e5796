import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The kernel's word on who connected to an accepted Unix socket, as of the connect: SO_PEERCRED
/// (pid, uid, primary gid) and SO_PEERGROUPS (the supplementary groups the peer process held).
/// Roles come from these, never from the group database: a process that dropped a group has
/// lost it, and one that gained a group at run time has it.
/// Glibc's Swift module hides `struct ucred`, so its layout (pid, uid, gid) is mirrored here.
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = .max
    var gid: UInt32 = .max
    /// The peer's supplementary groups; empty when it has none or more than `maxGroups` (then
    /// it is judged by its primary group alone: fewer rights, never more).
    var groups: [UInt32] = []

    /// Linux's SO_PEERGROUPS (4.13 and later); Glibc's module does not export it.
    static let soPeerGroups: Int32 = 59
    static let maxGroups = 256

    /// Mirrors `struct ucred`.
    private struct Credentials {
        var pid: Int32 = 0
        var uid: UInt32 = .max
        var gid: UInt32 = .max
    }

    /// A zero-length buffer: the kernel answers ERANGE when the peer has any group, and succeeds
    /// when it has none, which a zeroed buffer alone cannot tell from group 0.
    private struct NoGroups {}
    private struct GroupList {
        var gids = InlineArray<256, UInt32>(repeating: 0)
    }

    /// Reads the credentials on the channel's event loop.
    static func of(_ channel: Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        let credentials: EventLoopFuture<Credentials> = provider.unsafeGetSocketOption(
            level: .init(SOL_SOCKET),
            name: .init(SO_PEERCRED)
        )
        return credentials.flatMap { found in
            let base = PeerCredentials(pid: found.pid, uid: found.uid, gid: found.gid)
            let probe: EventLoopFuture<NoGroups> = provider.unsafeGetSocketOption(
                level: .init(SOL_SOCKET),
                name: .init(soPeerGroups)
            )
            return probe.map { _ in base }.flatMapError { _ in
                let list: EventLoopFuture<GroupList> = provider.unsafeGetSocketOption(
                    level: .init(SOL_SOCKET),
                    name: .init(soPeerGroups)
                )
                return list.map { list in
                    var copy = base
                    copy.groups = groups(in: list.gids)
                    return copy
                }.recover { _ in base }
            }
        }
    }

    /// The groups the kernel wrote: at least one (the probe said so), in ascending order, so a
    /// zero after the first is the buffer's padding, not group 0.
    private static func groups(in buffer: InlineArray<256, UInt32>) -> [UInt32] {
        var groups = [buffer[0]]
        for index in 1..<buffer.count {
            let gid = buffer[index]
            if gid == 0 { break }
            groups.append(gid)
        }
        return groups
    }
}
