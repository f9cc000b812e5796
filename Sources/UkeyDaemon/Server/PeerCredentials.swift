import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// SO_PEERCRED of an accepted Unix-socket connection: the kernel's word on who connected.
/// Glibc's Swift module hides `struct ucred`, so its layout (pid, uid, gid) is mirrored here.
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = .max
    var gid: UInt32 = .max

    /// Reads the credentials on the channel's event loop.
    static func of(_ channel: Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        return provider.unsafeGetSocketOption(level: .init(SOL_SOCKET), name: .init(SO_PEERCRED))
    }
}
