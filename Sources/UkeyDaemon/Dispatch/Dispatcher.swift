import UkeyAPI
import UkeyAudit
import UkeyVarlink

/// Routes a call to its method after the checks every call gets, in this order: the interface
/// and method exist; the caller holds the method's role (else PermissionDenied, and nothing
/// runs); the parameters read as the method's request and pass its checks (else
/// InvalidParameter naming one). Then the method answers, its reply is written, and the records
/// its `audit` describes are queued. Unary calls, queued measurements and follow streams all
/// take this path: one lookup, one role check, one read, one audit.
public struct Dispatcher: Sendable {
    let services: DaemonServices
    let routes: [String: Route]

    public init(services: DaemonServices) {
        self.services = services
        self.routes = Dictionary(uniqueKeysWithValues: MethodTable.all.map { ($0.name, Route($0)) })
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

    private func handle(_ call: VarlinkCall, from caller: Caller, admitted: Result<Route, APIError>) async -> Handled {
        switch admitted {
        case .failure(let refusal):
            return refused(call, from: caller, refusal)
        case .success(let route):
            return recorded(await route.answer(call.parameters, context(caller)), caller: caller)
        }
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
            let record: @Sendable ([AuditRecord]) -> (AuditLog.Ticket?, AuditLog?) = { records in
                CallRecorder.record(CallRecorder.entries(records, caller: caller, holder: holder), holder: holder)
            }
            switch await submit(call.parameters, context(caller), record) {
            case .queued(let ticket): return .queued(ticket)
            case .answered(let outcome): return .handled(recorded(outcome, caller: caller))
            case .notQueued: break
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
            let immediate = route.immediate, let outcome = immediate(call.parameters, context(caller)),
            CallRecorder.entries(outcome.records, caller: caller, holder: services.audit, probe: true).isEmpty
        else { return nil }
        return outcome.reply
    }

    /// Refuses a call before any method sees it (a guest asking beyond what its channel may):
    /// PermissionDenied, recorded as every refusal is.
    func refuse(_ call: VarlinkCall, from caller: Caller) -> Handled {
        refused(call, from: caller, .permissionDenied)
    }

    /// The queued call's reply, once its batch answered it and queued its audit records.
    func finish(_ ticket: MeasurementTicket) async -> Handled {
        let answer = await ticket.answer()
        return Handled(reply: Route.reply(answer.result), ticket: answer.audit, log: answer.log)
    }

    /// The reply to send, once the call's audit records are durable. If the log cannot take
    /// them, the client gets an error instead: nothing is acknowledged unrecorded.
    public func acknowledge(_ handled: Handled) async -> VarlinkReply {
        guard let ticket = handled.ticket, let log = handled.log else { return handled.reply }
        do {
            try await log.durable(ticket)
            return handled.reply
        } catch {
            return .failure(APIError.auditUnavailable(reason: error.description).varlink)
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
        try await stream(call.parameters, context(caller), stopping, connected) { outcome in
            try await send(await acknowledge(recorded(outcome, caller: caller)))
        }
    }

    /// The checks before any method runs.
    private func admit(_ call: VarlinkCall, from caller: Caller) -> Result<Route, APIError> {
        guard let route = routes[call.method] else {
            // Unknown: say whether the interface is, so a client learns which name was wrong.
            guard APIInterface.all.contains(where: { $0.name == call.interface }) else {
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
    private func recorded(_ outcome: Route.Outcome, caller: Caller) -> Handled {
        let entries: [AuditEntry]
        if case .invalid(let parameter) = outcome.refusal {
            entries = CallRecorder.refusal(
                "invalid-call",
                method: outcome.method,
                detail: ["parameter": .string(parameter)],
                caller: caller,
                holder: services.audit
            )
        } else {
            entries = CallRecorder.entries(outcome.records, caller: caller, holder: services.audit)
        }
        let (ticket, log) = CallRecorder.record(entries, holder: services.audit)
        return Handled(reply: outcome.reply, ticket: ticket, log: log)
    }

    /// A call refused before its method: a denial is recorded (within the denial limits); an
    /// unknown method leaves nothing.
    private func refused(_ call: VarlinkCall, from caller: Caller, _ refusal: APIError) -> Handled {
        guard refusal == .permissionDenied else {
            return Handled(reply: .failure(refusal.varlink), ticket: nil, log: nil)
        }
        let entries = CallRecorder.refusal(
            "permission-denied",
            method: call.method,
            detail: [:],
            caller: caller,
            holder: services.audit
        )
        let (ticket, log) = CallRecorder.record(entries, holder: services.audit)
        return Handled(reply: .failure(refusal.varlink), ticket: ticket, log: log)
    }
}
