/// One method of the API: its typed request and reply, who may call it, and what answers it.
/// A new method is a type conforming to this (its own file, by its interface), its line in the
/// IDL, its wire form (`Wire/`), and its entry in `MethodTable`. The dispatcher gives every
/// method the same path: lookup, role check, decode, answer, encode, audit.
protocol ServiceMethod: Sendable {
    associatedtype Request: WireRequest
    associatedtype Reply: WireReply
    /// The fully qualified varlink name, as the IDL spells it.
    static var name: String { get }
    /// nil: anyone who can connect.
    static var role: Role? { get }
    static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply
}

/// A method whose work may be queued (a measurement by digest, for the next group commit): the
/// connection goes on reading while it waits, and answers its calls in order.
protocol QueuedMethod: ServiceMethod {
    /// Queues the call's work and returns its ticket; nil when this call cannot be queued (then
    /// `answer` answers it).
    static func submit(
        _ request: Request,
        in call: CallContext,
        origin: MeasurementTicket.Origin
    ) async throws(ServiceError) -> MeasurementTicket?
}

/// A method answered at once from state already in memory, without waiting on anything: the
/// server may answer it on the connection's event loop (`ImmediateLane`), so the exec path's
/// question costs no hop between threads. `answer` must give the same reply.
protocol ImmediateMethod: ServiceMethod {
    static func answerNow(_ request: Request, in call: CallContext) throws(ServiceError) -> Reply
}

extension ImmediateMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
        try answerNow(request, in: call)
    }
}

/// A method that streams when called with `more: true` (`Audit.Query` following new records, a
/// guard's presence).
protocol StreamingMethod: ServiceMethod {
    /// Sends replies, each but the last with `continues`, until the client goes (`connected`
    /// turns false) or `stopping`. Throws only when sending fails.
    static func stream(
        _ request: Request,
        in call: CallContext,
        stopping: @escaping @Sendable () -> Bool,
        connected: @escaping @Sendable () -> Bool,
        send: (Result<Reply, ServiceError>, _ continues: Bool) async throws -> Void
    ) async throws
}

/// What a method is answered with: the daemon's services and who called.
struct CallContext: Sendable {
    let services: DaemonServices
    let caller: Caller
}
