import Logging
import NIOCore
import UkeyVarlink

/// Serves one varlink connection by its `ConnectionStateMachine`: a reader that frames, decodes,
/// admits and starts calls, and a sender that acknowledges them (their audit records durable)
/// and writes the replies, in call order. The two run side by side, so pipelined calls share one
/// fsync (group commit). Client sockets and guests' channels differ only in what they hand in:
/// how a call is admitted, the machine's limits, and what the sender tells the immediate lane.
struct ConnectionDriver: Sendable {
    /// What the connection's owner makes of a call before any method sees it.
    enum Admission: Sendable {
        case dispatch(VarlinkCall)
        /// Refused before any method sees it: recorded as PermissionDenied in its turn (after the
        /// queued calls before it, as any call that is not queued).
        case refuse
    }

    /// What the sender does next, in call order.
    private enum Outgoing: Sendable {
        case reply(ConnectionControl.Machine.CallID, Dispatcher.Handled)
        case queued(ConnectionControl.Machine.CallID, MeasurementTicket)
        case refuse(ConnectionControl.Machine.CallID, VarlinkError)
        case follow(ConnectionControl.Machine.CallID, VarlinkCall)
        case settled(UInt64)
    }

    let dispatcher: Dispatcher
    let caller: Caller
    /// Who is at the other end, for the log.
    let peer: String
    let logger: Logger
    var admit: @Sendable (VarlinkCall) -> Admission = { .dispatch($0) }
    /// Whether the daemon is stopping: a follower's stream then ends.
    var stopping: @Sendable () -> Bool = { false }
    /// Told, after the replies before it are written, how many reads are settled.
    var settled: @Sendable (UInt64) -> Void = { _ in }

    /// Serves the connection until the peer goes, breaks the protocol, or a write fails.
    func run(
        _ control: ConnectionControl,
        inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        let (outgoing, queue) = AsyncStream<Outgoing>.makeStream()
        try await withThrowingTaskGroup { group in
            group.addTask {
                defer { control.report { $0.closed() } }
                try await send(outgoing, control: control, outbound: outbound)
            }
            do {
                try await read(inbound, control: control, into: queue)
            } catch {
                queue.finish()
                throw error
            }
            // The sender writes what is left; a write that failed ends the connection with its error.
            queue.finish()
            try await group.waitForAll()
        }
    }

    private func read(
        _ inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
        control: ConnectionControl,
        into queue: AsyncStream<Outgoing>.Continuation
    ) async throws {
        let channel = control.channel
        let closes = control.step { $0.configuration.protocolErrors == .close }
        func refuse(_ id: ConnectionControl.Machine.CallID, _ error: VarlinkError) {
            logger.warning("\(closes ? "closing " : "")\(peer): \(error)")
            queue.yield(.refuse(id, error))
        }
        for try await buffer in inbound {
            control.step { $0.read(buffer.readableBytesView) }
            taking: while true {
                switch await control.next(connected: channel.isActive) {
                case .read:
                    break taking
                case .wait:
                    continue  // `next` has waited already
                case .settled(let reads):
                    queue.yield(.settled(reads))
                case .stop:
                    return
                case .refuse(let id, let error):
                    refuse(id, error)
                case .message(let message):
                    let call: VarlinkCall
                    do throws(VarlinkError) {
                        call = try VarlinkCodec.decodeCall(message)
                    } catch {
                        refuse(control.step { $0.malformed() }, error)
                        continue
                    }
                    await begin(call, control: control, into: queue)
                }
            }
        }
    }

    private func begin(
        _ call: VarlinkCall,
        control: ConnectionControl,
        into queue: AsyncStream<Outgoing>.Continuation
    ) async {
        let admission = admit(call)
        let kind: ConnectionControl.Machine.Kind
        switch admission {
        case .refuse:
            kind = .unqueueable
        case .dispatch(let call):
            // Only a caller allowed to follow loses the idle timeout; anyone else's call is
            // answered (refused, and recorded) like any other.
            kind =
                call.more && dispatcher.canFollow(call, from: caller)
                ? .follow : dispatcher.queues(call) ? .queueable : .unqueueable
        }
        var (id, action) = control.step { $0.take(call, as: kind) }
        while case .settleQueued(let ticket) = action {
            _ = await ticket.answer()
            action = control.step { $0.queuedAnswered(kind) }
        }
        switch (admission, action) {
        case (.refuse, _):
            queue.yield(.reply(id, dispatcher.refuse(call, from: caller)))
        case (.dispatch(let call), .follow):
            queue.yield(.follow(id, call))
        case (.dispatch(let call), _):
            switch await dispatcher.start(call, from: caller) {
            case .queued(let ticket):
                control.step { $0.queued(ticket) }
                queue.yield(.queued(id, ticket))
            case .handled(let handled):
                if handled.reply.error == VarlinkError.permissionDenied().name {
                    logger.notice("permission denied: uid \(caller.uid) pid \(caller.pid) called \(call.method)")
                }
                queue.yield(.reply(id, handled))
            }
        }
    }

    private func send(
        _ outgoing: AsyncStream<Outgoing>,
        control: ConnectionControl,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        func deliver(_ id: ConnectionControl.Machine.CallID, _ reply: VarlinkReply?) async throws {
            let due = control.step { $0.answered(id, reply) }
            // One write for the replies due together: one hop to the event loop, not one each.
            switch due.replies.count {
            case 0: break
            case 1: try await outbound.write(due.replies[0])
            default:
                var batch = ByteBuffer()
                for reply in due.replies { batch.writeBytes(reply.wireBytes) }
                try await outbound.write(batch)
            }
            if control.report({ $0.written(due) }) { control.channel.close(promise: nil) }
        }
        for await item in outgoing {
            switch item {
            case .settled(let reads):
                settled(reads)
            case .reply(let id, let handled):
                try await deliver(id, await dispatcher.acknowledge(handled))
            case .queued(let id, let ticket):
                try await deliver(id, await dispatcher.acknowledge(await dispatcher.finish(ticket)))
            case .refuse(let id, let error):
                try await deliver(id, .failure(error))
            case .follow(let id, let call):
                control.step { $0.startFollowing() }
                let connection = control.channel
                try await dispatcher.follow(
                    call,
                    from: caller,
                    stopping: stopping,
                    connected: { connection.isActive },
                    send: { try await outbound.write($0) }
                )
                try await deliver(id, nil)
            }
        }
    }
}

extension NIOAsyncChannelOutboundWriter<ByteBuffer> {
    /// Writes one reply, framed.
    func write(_ reply: VarlinkReply) async throws {
        try await write(ByteBuffer(bytes: reply.wireBytes))
    }
}
