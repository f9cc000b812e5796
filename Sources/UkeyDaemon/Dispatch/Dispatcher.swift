import UkeyAudit
import UkeyVarlink

/// Routes a call to its method after the checks every call gets, in this order: the interface
/// and method exist; the caller holds the method's role (else PermissionDenied, and nothing runs).
/// Then the wire layer reads the typed request, the method answers, the wire layer writes the
/// reply, and `AuditRules` records the call. Unary calls, queued measurements and follow streams
/// all take this path: one lookup, one role check, one audit.
public struct Dispatcher: Sendable {
    /// A method with its wire conversions applied: what the dispatcher runs.
    struct Route: Sendable {
        typealias Answer = @Sendable (Parameters, CallContext) async throws(ServiceError) -> [String: JSONValue]
        typealias Submit =
            @Sendable (Parameters, CallContext, MeasurementTicket.Origin) async throws(ServiceError) ->
            MeasurementTicket?
        typealias Stream =
            @Sendable (
                Parameters, CallContext, _ stopping: @escaping @Sendable () -> Bool,
                _ connected: @escaping @Sendable () -> Bool,
                _ send: (VarlinkReply) async throws -> Void
            ) async throws -> Void
        typealias Immediate = @Sendable (Parameters, CallContext) throws(ServiceError) -> [String: JSONValue]

        let role: Role?
        let answer: Answer
        /// Queues the call's work instead of answering it (`QueuedMethod`).
        let submit: Submit?
        /// Answers a call made with `more: true` by streaming (`StreamingMethod`).
        let stream: Stream?
        /// Answers without waiting (`ImmediateMethod`).
        let immediate: Immediate?
    }

    let services: DaemonServices
    let routes: [String: Route]

    public init(services: DaemonServices) {
        self.services = services
        self.routes = Dictionary(uniqueKeysWithValues: MethodTable.all.map { ($0.name, Self.route($0)) })
    }

    /// A call answered but not yet acknowledged: its audit records may still be on their way
    /// to the disk.
    public struct Handled: Sendable {
        public let reply: VarlinkReply
        let ticket: AuditLog.Ticket?
        let log: AuditLog?
    }

    /// Answers one call and queues its audit records. Never throws: every failure is an error
    /// reply. Send the reply only after `acknowledge`.
    public func handle(_ call: VarlinkCall, from caller: Caller) async -> Handled {
        await handle(call, from: caller, admitted: admit(call, from: caller))
    }

    private func handle(
        _ call: VarlinkCall,
        from caller: Caller,
        admitted: Result<Route, ServiceError>
    ) async -> Handled {
        let reply: VarlinkReply
        switch admitted {
        case .failure(let refusal):
            reply = .failure(refusal.varlink)
        case .success(let route):
            do throws(ServiceError) {
                reply = VarlinkReply(parameters: try await route.answer(Parameters(call.parameters), context(caller)))
            } catch {
                reply = .failure(error.varlink)
            }
        }
        return recorded(call, from: caller, reply: reply)
    }

    /// A call begun: answered already, or a measurement queued for a batch, to be finished
    /// (in call order) with `finish`.
    enum Started: Sendable {
        case handled(Handled)
        case queued(MeasurementTicket)
    }

    /// Whether `start` may queue this call rather than answer it: the connection must then let
    /// its queued calls settle before it starts any call that may not be queued.
    func queues(_ call: VarlinkCall) -> Bool {
        routes[call.method]?.submit != nil
    }

    /// Begins a call: one a method may queue (a measurement by digest), from a caller allowed to
    /// make it, is queued for the next batch; anything else is handled as `handle` does.
    func start(_ call: VarlinkCall, from caller: Caller) async -> Started {
        let admitted = admit(call, from: caller)
        if case .success(let route) = admitted, let submit = route.submit {
            let holder = services.audit
            let origin = MeasurementTicket.Origin { result in
                AuditRules.record(call, caller: caller, reply: Self.reply(result), holder: holder)
            }
            do throws(ServiceError) {
                if let ticket = try await submit(Parameters(call.parameters), context(caller), origin) {
                    return .queued(ticket)
                }
            } catch {
                return .handled(recorded(call, from: caller, reply: .failure(error.varlink)))
            }
        }
        return .handled(await handle(call, from: caller, admitted: admitted))
    }

    /// The reply to a call that can be answered right here, on the calling thread, and leaves no
    /// audit record (an allowed exec, as the default audit settings have it); nil for any other
    /// call, which then takes the usual path. Nothing is recorded or changed here: a call this
    /// declines is answered afresh by `start`.
    func answerImmediately(_ call: VarlinkCall, from caller: Caller) -> VarlinkReply? {
        // Where allowed execs may be recorded, asking whether this one is would move the sampler,
        // and the call declined here would be asked again: such a daemon answers on the usual path.
        guard !call.more, !services.audit.mayRecordAllowedExec, case .success(let route) = admit(call, from: caller),
            let immediate = route.immediate
        else { return nil }
        let reply: VarlinkReply
        do throws(ServiceError) {
            reply = VarlinkReply(parameters: try immediate(Parameters(call.parameters), context(caller)))
        } catch {
            return nil
        }
        guard AuditRules.entries(for: call, caller: caller, reply: reply, holder: services.audit, probe: true).isEmpty
        else { return nil }
        return reply
    }

    /// Refuses a call before any method sees it (a guest asking beyond what its channel may):
    /// PermissionDenied, recorded as every refusal is.
    func refuse(_ call: VarlinkCall, from caller: Caller) -> Handled {
        recorded(call, from: caller, reply: .failure(VarlinkError.permissionDenied()))
    }

    /// The queued call's reply, once its batch answered it and queued its audit records.
    func finish(_ ticket: MeasurementTicket) async -> Handled {
        let answer = await ticket.answer()
        return Handled(reply: Self.reply(answer.result), ticket: answer.audit, log: answer.log)
    }

    /// The reply to send, once the call's audit records are durable. If the log cannot take
    /// them, the client gets an error instead: nothing is acknowledged unrecorded.
    public func acknowledge(_ handled: Handled) async -> VarlinkReply {
        guard let ticket = handled.ticket, let log = handled.log else { return handled.reply }
        do {
            try await log.durable(ticket)
            return handled.reply
        } catch {
            return .failure(ServiceError.auditUnavailable(reason: error.description).varlink)
        }
    }

    /// Whether this call streams (`more: true` to a `StreamingMethod`) for this caller. Checked
    /// before the connection gives up its idle timeout, so a peer the method refuses cannot hold
    /// a connection open by asking to follow; its call is refused (and recorded) by `start`.
    public func canFollow(_ call: VarlinkCall, from caller: Caller) -> Bool {
        guard call.more, case .success(let route) = admit(call, from: caller) else { return false }
        return route.stream != nil
    }

    /// Streams a `more: true` call: after the same admission and with the same audit rules as
    /// every call, each reply acknowledged before it is sent, until the client goes (`connected`
    /// turns false) or the daemon stops. A call that does not stream is answered once, as
    /// `handle` does.
    public func follow(
        _ call: VarlinkCall,
        from caller: Caller,
        stopping: @escaping @Sendable () -> Bool,
        connected: @escaping @Sendable () -> Bool = { true },
        send: (VarlinkReply) async throws -> Void
    ) async throws {
        guard case .success(let route) = admit(call, from: caller), let stream = route.stream else {
            return try await send(await acknowledge(await handle(call, from: caller)))
        }
        try await stream(Parameters(call.parameters), context(caller), stopping, connected) { reply in
            try await send(await acknowledge(recorded(call, from: caller, reply: reply)))
        }
    }

    /// The checks before any method runs.
    private func admit(_ call: VarlinkCall, from caller: Caller) -> Result<Route, ServiceError> {
        guard let route = routes[call.method] else {
            // Unknown: say whether the interface is, so a client learns which name was wrong.
            guard VarlinkInterface.all.contains(where: { $0.name == call.interface }) else {
                return .failure(.interfaceNotFound(call.interface))
            }
            return .failure(.methodNotFound(call.methodName))
        }
        if let role = route.role, !caller.roles.contains(role) { return .failure(.permissionDenied) }
        return .success(route)
    }

    private func context(_ caller: Caller) -> CallContext {
        CallContext(services: services, caller: caller)
    }

    /// The reply with its audit records queued.
    private func recorded(_ call: VarlinkCall, from caller: Caller, reply: VarlinkReply) -> Handled {
        let (ticket, log) = AuditRules.record(call, caller: caller, reply: reply, holder: services.audit)
        return Handled(reply: reply, ticket: ticket, log: log)
    }

    private static func reply<R: WireReply>(_ result: Result<R, ServiceError>) -> VarlinkReply {
        switch result {
        case .success(let reply): VarlinkReply(parameters: reply.wire)
        case .failure(let error): .failure(error.varlink)
        }
    }

    // MARK: routes from typed methods

    static func route<M: ServiceMethod>(_ method: M.Type) -> Route {
        let answer: Route.Answer = {
            (parameters: Parameters, call: CallContext) async throws(ServiceError) -> [String: JSONValue] in
            try await M.answer(try M.Request(wire: parameters), in: call).wire
        }
        var submit: Route.Submit?
        if let queued = method as? any QueuedMethod.Type { submit = submitter(queued) }
        var stream: Route.Stream?
        if let streaming = method as? any StreamingMethod.Type { stream = streamer(streaming) }
        var immediate: Route.Immediate?
        if let now = method as? any ImmediateMethod.Type { immediate = answerer(now) }
        return Route(role: M.role, answer: answer, submit: submit, stream: stream, immediate: immediate)
    }

    private static func answerer<M: ImmediateMethod>(_ method: M.Type) -> Route.Immediate {
        { (parameters: Parameters, call: CallContext) throws(ServiceError) -> [String: JSONValue] in
            try M.answerNow(try M.Request(wire: parameters), in: call).wire
        }
    }

    private static func submitter<M: QueuedMethod>(_ method: M.Type) -> Route.Submit {
        {
            (
                parameters: Parameters,
                call: CallContext,
                origin: MeasurementTicket.Origin
            ) async throws(ServiceError) -> MeasurementTicket? in
            try await M.submit(try M.Request(wire: parameters), in: call, origin: origin)
        }
    }

    private static func streamer<M: StreamingMethod>(_ method: M.Type) -> Route.Stream {
        { parameters, call, stopping, connected, send in
            let request: M.Request
            do throws(ServiceError) {
                request = try M.Request(wire: parameters)
            } catch {
                return try await send(.failure(error.varlink))
            }
            try await M.stream(request, in: call, stopping: stopping, connected: connected) { result, continues in
                var reply = reply(result)
                reply.continues = continues
                try await send(reply)
            }
        }
    }
}
