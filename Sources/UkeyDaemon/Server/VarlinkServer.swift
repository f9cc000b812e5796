import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import UkeyVarlink

/// ukeyd's listener: a Unix stream socket speaking varlink, one task per connection.
///
/// Every connection gets its peer's credentials (SO_PEERCRED) and roles before its first call;
/// calls on one connection are answered in order (pipelining). Limits keep one bad client from
/// hurting the rest: a message over the size limit, a connection idle past its timeout, or one
/// connection too many is refused with an error, and the service goes on.
public struct VarlinkServer: Sendable {
    public struct Configuration: Sendable {
        public var socketPath: String
        public var socketMode: mode_t = 0o660
        /// The group that owns the socket (so its members may connect).
        public var socketGroup: String?
        public var maxConnections = 1024
        /// Connections one uid without the admin or hypervisor role may hold at once.
        public var maxConnectionsPerUID = 32
        public var idleTimeout: TimeAmount = .seconds(60)
        public var messageLimit = VarlinkFraming.defaultLimit
        /// A socket handed over by systemd (LISTEN_FDS), used instead of binding `socketPath`.
        public var activatedSocket: Int32?

        public init(socketPath: String) {
            self.socketPath = socketPath
        }
    }

    /// What a reload (SIGHUP) may change for connections accepted after it.
    public struct LiveSettings: Sendable {
        public var roles: RolePolicy
        public var maxConnections: Int
        public var maxConnectionsPerUID: Int
        public init(roles: RolePolicy, maxConnections: Int, maxConnectionsPerUID: Int = 32) {
            self.roles = roles
            self.maxConnections = maxConnections
            self.maxConnectionsPerUID = maxConnectionsPerUID
        }

        var limits: ConnectionAdmission.Limits {
            .init(maxConnections: maxConnections, maxPerUnprivilegedUID: maxConnectionsPerUID)
        }
    }

    let configuration: Configuration
    let dispatcher: Dispatcher
    let live: NIOLockedValueBox<LiveSettings>
    /// Set at shutdown, so followers end their streams and the drain can finish.
    let stopping = NIOLockedValueBox(false)
    let connections = OpenConnections()
    /// How long a stop waits for calls in flight before it closes what is left.
    static let drainDeadline: TimeAmount = .milliseconds(1500)
    let logger: Logger

    public init(configuration: Configuration, dispatcher: Dispatcher, roles: RolePolicy, logger: Logger) {
        self.configuration = configuration
        self.dispatcher = dispatcher
        self.live = NIOLockedValueBox(
            LiveSettings(
                roles: roles,
                maxConnections: configuration.maxConnections,
                maxConnectionsPerUID: configuration.maxConnectionsPerUID
            )
        )
        self.logger = logger
    }

    /// Applies reloaded settings to connections accepted from now on.
    public func update(_ settings: LiveSettings) {
        live.withLockedValue { $0 = settings }
        logger.notice(
            "settings reloaded: admin group \(settings.roles.adminGroup ?? "-"), hypervisor group \(settings.roles.hypervisorGroup ?? "-"), max connections \(settings.maxConnections), per unprivileged uid \(settings.maxConnectionsPerUID)"
        )
    }

    /// An accepted connection, not yet wrapped for async use: see `bind`.
    typealias Connection = (PeerCredentials, any Channel)
    static let idleHandler = "ukey-idle"

    /// What a connection's sender does next, in call order.
    enum Outgoing: Sendable {
        case reply(Dispatcher.Handled, oneway: Bool)
        case queued(VarlinkCall, MeasurementTicket)
        case refuse(VarlinkError)
        case follow(VarlinkCall)
        /// The reader has read this many reads whole, with no partial message left: once the
        /// replies before this are written, the immediate lane may answer again.
        case settled(UInt64)
    }

    /// Binds, calls `ready`, and serves until `shutdown` fires; then stops accepting, lets
    /// in-flight calls finish, closes idle connections and follow streams at once, and returns.
    /// A connection still busy after `drainDeadline` (a client that does not read) is closed.
    public func run(ready: @Sendable () -> Void, shutdown: @escaping @Sendable () async -> Void) async throws {
        let server = try await bind()
        let admission = NIOLockedValueBox(ConnectionAdmission())
        ready()
        let deadline = NIOLockedValueBox<Task<Void, Never>?>(nil)
        defer { deadline.withLockedValue { $0?.cancel() } }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                await shutdown()
                stopping.withLockedValue { $0 = true }
                logger.notice("shutting down: no new connections; \(connections.count) open connection(s) drain")
                try? await server.channel.close()
                connections.drainAll()
                let connections = connections
                let logger = logger
                deadline.withLockedValue {
                    $0 = Task {
                        guard (try? await Task.sleep(for: .nanoseconds(Self.drainDeadline.nanoseconds))) != nil else {
                            return
                        }
                        logger.warning("closing \(connections.count) connection(s) still busy at the stop's deadline")
                        connections.closeAll()
                    }
                }
            }
            try await server.executeThenClose { inbound in
                for try await connection in inbound {
                    let (credentials, _) = connection
                    let settings = live.withLockedValue { $0 }
                    let caller = Caller(
                        uid: credentials.uid,
                        gid: credentials.gid,
                        pid: credentials.pid,
                        roles: settings.roles.roles(
                            uid: credentials.uid,
                            gid: credentials.gid,
                            groups: credentials.groups
                        )
                    )
                    let privileged = !caller.roles.isDisjoint(with: [.admin, .hypervisor])
                    let refusal = admission.withLockedValue {
                        $0.admit(uid: caller.uid, privileged: privileged, limits: settings.limits)
                    }
                    group.addTask {
                        defer {
                            if refusal == nil {
                                admission.withLockedValue { $0.leave(uid: caller.uid, privileged: privileged) }
                            }
                        }
                        await serve(connection, caller: caller, refusal: refusal)
                    }
                }
            }
        }
        logger.notice("stopped")
    }

    private func bind() async throws -> NIOAsyncChannel<Connection, Never> {
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
                try channel.pipeline.syncOperations.addHandler(
                    IdleStateHandler(readTimeout: idle),
                    name: Self.idleHandler
                )
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

    /// One connection: frame, decode, dispatch, reply, in order, until the peer goes or breaks the protocol.
    private func serve(_ connection: Connection, caller: Caller, refusal: ConnectionAdmission.Refusal?) async {
        let raw = connection.1
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        let lane: NIOLoopBound<ImmediateLane>
        let dispatcher = dispatcher
        let stopping = stopping
        do {
            (channel, lane) = try await raw.eventLoop.submit {
                let lane = try raw.pipeline.syncOperations.handler(type: ImmediateLane.self)
                let wrapped = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: raw)
                // Nothing may throw after the wrapper exists: it must reach executeThenClose.
                if refusal == nil {
                    lane.open { call in
                        stopping.withLockedValue { $0 } ? nil : dispatcher.answerImmediately(call, from: caller)
                    }
                }
                try? raw.syncOptions?.setOption(.autoRead, value: true)
                return (wrapped, NIOLoopBound(lane, eventLoop: raw.eventLoop))
            }.get()
        } catch {
            logger.debug("connection from uid \(caller.uid) closed before it was served: \(error)")
            raw.close(promise: nil)
            return
        }
        do {
            try await channel.executeThenClose { inbound, outbound in
                func send(_ reply: VarlinkReply) async throws {
                    try await outbound.write(ByteBuffer(bytes: VarlinkFraming.frame(VarlinkCodec.encode(reply))))
                }
                if let refusal {
                    let limit = live.withLockedValue { $0.maxConnections }
                    logger.warning("refused a connection from uid \(caller.uid): \(refusal.reason)")
                    try await send(
                        .failure(
                            VarlinkError(
                                "io.ukey.TooManyConnections",
                                ["limit": .int(limit), "reason": .string(refusal.reason)]
                            )
                        )
                    )
                    return
                }
                // Calls run in order as they arrive; replies leave in the same order, each once its
                // audit records are durable. So pipelined calls share one fsync (group commit).
                // At most `ReplySlots.perConnection` calls are in flight: a client that does not
                // read its replies stops being read from.
                let (outgoing, queue) = AsyncStream<Outgoing>.makeStream()
                let slots = ReplySlots()
                let registration = connections.add(channel.channel, slots: slots)
                defer { connections.remove(registration) }
                try await withThrowingTaskGroup { group in
                    group.addTask {
                        defer { slots.close() }
                        for await item in outgoing {
                            if case .settled(let count) = item {
                                // After this task's writes on the same loop: the lane cannot overtake them.
                                raw.eventLoop.execute { lane.value.settled(count) }
                                continue
                            }
                            defer { slots.release() }
                            switch item {
                            case .reply(let handled, let oneway):
                                let reply = await dispatcher.acknowledge(handled)
                                if !oneway { try await send(reply) }
                            case .queued(let call, let ticket):
                                let reply = await dispatcher.acknowledge(await dispatcher.finish(ticket))
                                if !call.oneway { try await send(reply) }
                            case .refuse(let error):
                                try await send(.failure(error))
                            case .follow(let call):
                                // A follower is silent by design: the idle timeout no longer applies.
                                try? await channel.channel.pipeline.removeHandler(name: Self.idleHandler).get()
                                let connection = channel.channel
                                try await dispatcher.follow(
                                    call,
                                    from: caller,
                                    stopping: { stopping.withLockedValue { $0 } },
                                    connected: { connection.isActive },
                                    send: send
                                )
                            case .settled:
                                break
                            }
                        }
                    }
                    defer { queue.finish() }
                    var framing = VarlinkFraming(limit: configuration.messageLimit)
                    // The last measurement queued and not yet answered: a call that is not queued
                    // waits for it, so it sees the effect of every call before it on this connection
                    // and its audit records follow theirs.
                    var lastQueued: MeasurementTicket?
                    var reads: UInt64 = 0
                    for try await buffer in inbound {
                        reads += 1
                        defer { if framing.pendingCount == 0 { queue.yield(.settled(reads)) } }
                        let messages: [[UInt8]]
                        do throws(VarlinkError) {
                            messages = try framing.feed(buffer.readableBytesView)
                        } catch {
                            logger.warning("closing a connection from uid \(caller.uid): \(error)")
                            queue.yield(.refuse(error))
                            return
                        }
                        for message in messages {
                            guard await slots.acquire() else { return }
                            // A client that left has no use for the calls it queued: drop them
                            // (a flood of logins must not hold up the others, or the stop).
                            guard channel.channel.isActive else { return }
                            let call: VarlinkCall
                            do throws(VarlinkError) {
                                call = try VarlinkCodec.decodeCall(message)
                            } catch {
                                logger.warning("closing a connection from uid \(caller.uid): \(error)")
                                queue.yield(.refuse(error))
                                return
                            }
                            if let last = lastQueued, !dispatcher.queues(call) {
                                _ = await last.answer()
                                lastQueued = nil
                            }
                            // Only a caller allowed to follow loses the idle timeout; anyone else's
                            // call is answered (refused, and recorded) like any other.
                            if call.more && dispatcher.canFollow(call, from: caller) {
                                queue.yield(.follow(call))
                                continue
                            }
                            switch await dispatcher.start(call, from: caller) {
                            case .queued(let ticket):
                                lastQueued = ticket
                                queue.yield(.queued(call, ticket))
                            case .handled(let handled):
                                if handled.reply.error == VarlinkError.permissionDenied().name {
                                    logger.notice(
                                        "permission denied: uid \(caller.uid) pid \(caller.pid) called \(call.method)"
                                    )
                                }
                                queue.yield(.reply(handled, oneway: call.oneway))
                            }
                        }
                    }
                }
            }
        } catch {
            logger.debug("connection from uid \(caller.uid) ended: \(error)")
        }
    }
}
