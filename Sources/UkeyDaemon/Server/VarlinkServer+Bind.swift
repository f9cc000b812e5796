import Logging
import NIOCore
import NIOPosix

extension VarlinkServer {
    /// An accepted connection, not yet wrapped for async use: see `bind`.
    typealias Connection = (PeerCredentials, any Channel)

    /// The listening socket: the one systemd passed, or `socketPath` bound afresh with its mode
    /// and group. Each child gets its peer's credentials, the idle timer and the immediate lane.
    func bind() async throws -> NIOAsyncChannel<Connection, Never> {
        let idle = configuration.idleTimeout
        // A child is wrapped in its NIOAsyncChannel by the task that serves it, not here: an
        // accepted child still queued when the server closes is dropped unserved, and a dropped
        // NIOAsyncChannel traps ("Deinited NIOAsyncWriter without calling finish()", a known race
        // of NIO's async server API). Children start with autoRead off, so nothing is read, and
        // nothing lost, before the wrapper's handlers are in place.
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.autoRead, value: false)
        let initializer: @Sendable (Channel) -> EventLoopFuture<Connection> = { channel in
            PeerCredentials.of(channel).flatMapThrowing { credentials in
                try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                try channel.pipeline.syncOperations.addHandler(CloseOnIdleHandler())
                try channel.pipeline.syncOperations.addHandler(ImmediateLane(), name: ImmediateLane.name)
                return (credentials, channel)
            }
        }
        if let note = try SocketPath.shareDirectory(of: configuration.socketPath, group: configuration.socketGroup) {
            logger.notice("\(note)")
        }
        if let fd = configuration.activatedSocket {
            logger.info("using the socket passed by systemd (fd \(fd))")
            return try await bootstrap.bind(fd, childChannelInitializer: initializer)
        }
        try SocketPath.removeStale(configuration.socketPath)
        let server = try await bootstrap.bind(
            unixDomainSocketPath: configuration.socketPath,
            childChannelInitializer: initializer
        )
        try SocketPath.secure(
            configuration.socketPath,
            mode: configuration.socketMode,
            group: configuration.socketGroup
        )
        logger.info("listening on \(configuration.socketPath) (mode \(String(configuration.socketMode, radix: 8)))")
        return server
    }
}
