import Logging
import NIOCore
import NIOPosix
import UkeyVarlink

/// ukeyd's listener: a Unix stream socket speaking varlink, one task per connection.
///
/// Every connection gets its peer's credentials (SO_PEERCRED) and roles before its first call;
/// calls on one connection are answered in order (pipelining), by `ConnectionDriver`. Limits keep
/// one bad client from hurting the rest: a message over the size limit, a connection idle past
/// its timeout, or one connection too many is refused with an error, and the service goes on.
public struct VarlinkServer: Sendable {
    let configuration: Configuration
    let dispatcher: Dispatcher
    let live: LiveSettings.Current
    let connections = OpenConnections()
    /// How long a stop waits for calls in flight before it closes what is left.
    static let drainDeadline: Duration = .milliseconds(1500)
    let logger: Logger

    public init(configuration: Configuration, dispatcher: Dispatcher, roles: RolePolicy, logger: Logger) {
        self.configuration = configuration
        self.dispatcher = dispatcher
        self.live = LiveSettings.Current(
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
        live.value = settings
        logger.notice(
            "settings reloaded: admin group \(settings.roles.adminGroup ?? "-"), hypervisor group \(settings.roles.hypervisorGroup ?? "-"), max connections \(settings.maxConnections), per unprivileged uid \(settings.maxConnectionsPerUID)"
        )
    }

    /// Binds, calls `ready`, and serves until `shutdown` fires; then stops accepting, lets
    /// in-flight calls finish, closes idle connections and follow streams at once, and returns.
    /// A connection still busy after `drainDeadline` (a client that does not read) is closed.
    public func run(ready: @Sendable () -> Void, shutdown: @escaping @Sendable () async -> Void) async throws {
        let server = try await bind()
        ready()
        defer { connections.cancelDeadline() }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                await shutdown()
                logger.notice("shutting down: no new connections; \(connections.count) open connection(s) drain")
                // First, so followers and the immediate lane see the stop before the socket closes;
                // a connection accepted meanwhile is drained as it is added.
                connections.drainAll(closingAfter: Self.drainDeadline, logger: logger)
                try? await server.channel.close()
            }
            try await server.executeThenClose { inbound in
                for try await connection in inbound {
                    let (credentials, _) = connection
                    let settings = live.value
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
                    let refusal = connections.admit(uid: caller.uid, privileged: privileged, limits: settings.limits)
                    group.addTask {
                        defer { if refusal == nil { connections.leave(uid: caller.uid, privileged: privileged) } }
                        await serve(connection, caller: caller, refusal: refusal)
                    }
                }
            }
        }
        logger.notice("stopped")
    }

    /// One connection: refused with the reason, or driven until the peer goes or breaks the protocol.
    private func serve(_ connection: Connection, caller: Caller, refusal: ConnectionAdmission.Refusal?) async {
        let raw = connection.1
        let control = ConnectionControl(channel: raw, connectionLimits)
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        let lane: NIOLoopBound<ImmediateLane>
        let dispatcher = dispatcher
        let connections = connections
        do {
            (channel, lane) = try await raw.eventLoop.submit {
                let lane = try raw.pipeline.syncOperations.handler(type: ImmediateLane.self)
                let idle = try raw.pipeline.syncOperations.handler(type: CloseOnIdleHandler.self)
                let wrapped = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: raw)
                // Nothing may throw after the wrapper exists: it must reach executeThenClose.
                if refusal == nil {
                    lane.open { call in
                        connections.stopping ? nil : dispatcher.answerImmediately(call, from: caller)
                    }
                    idle.decide = { control.idleTimedOut() }
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
                if let refusal {
                    let limit = live.value.maxConnections
                    logger.warning("refused a connection from uid \(caller.uid): \(refusal.reason)")
                    try await outbound.write(
                        .failure(
                            VarlinkError(
                                "io.ukey.TooManyConnections",
                                ["limit": .int(limit), "reason": .string(refusal.reason)]
                            )
                        )
                    )
                    return
                }
                let registration = connections.add(control)
                defer { connections.remove(registration) }
                let driver = ConnectionDriver(
                    dispatcher: dispatcher,
                    caller: caller,
                    peer: "a connection from uid \(caller.uid)",
                    logger: logger,
                    stopping: { connections.stopping },
                    // After the sender's writes, on the same loop: the lane cannot overtake them.
                    settled: { reads in raw.eventLoop.execute { lane.value.settled(reads) } }
                )
                try await driver.run(control, inbound: inbound, outbound: outbound)
            }
        } catch {
            logger.debug("connection from uid \(caller.uid) ended: \(error)")
        }
    }
}
