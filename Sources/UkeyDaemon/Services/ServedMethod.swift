import UkeyAPI

/// A method of the API as ukeyd answers it. Its name, role, request, reply and audit records
/// are the API's (`UkeyAPI`); the daemon adds only the answer, in the service the method
/// belongs to. The dispatcher gives every method the same path: lookup, role check, read and
/// validate the request, answer, write the reply, record.
protocol ServedMethod: APIMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply
}

/// A method whose reply never changes while ukeyd runs (`GetInfo`, the protocol's floor in the
/// benchmarks): written once, when the routes are made.
protocol ConstantMethod: ServedMethod where Request == Empty {
    static var reply: Reply { get }
}

extension ConstantMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply { reply }
}

/// A method whose work may be queued (a measurement by digest, for the next group commit): the
/// connection goes on reading while it waits, and answers its calls in order.
protocol QueuedMethod: ServedMethod where Reply == Boot.Measure.Reply {
    /// Queues the call's work and returns its ticket; nil when this call cannot be queued (then
    /// `answer` answers it).
    static func submit(
        _ request: Request,
        in call: CallContext,
        origin: MeasurementTicket.Origin
    ) async throws(APIError) -> MeasurementTicket?
}

/// A method answered at once from state already in memory, without waiting on anything: the
/// server may answer it on the connection's event loop (`ImmediateLane`), so the exec path's
/// question costs no hop between threads. `answer` must give the same reply.
protocol ImmediateMethod: ServedMethod {
    static func answerNow(_ request: Request, in call: CallContext) throws(APIError) -> Reply
}

extension ImmediateMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        try answerNow(request, in: call)
    }
}

/// A method that streams when called with `more: true` (`Audit.Query` following new records, a
/// guard's presence).
protocol StreamingMethod: ServedMethod {
    /// Sends replies, each but the last with `continues`, until the client goes (`connected`
    /// turns false) or `stopping`. Throws only when sending fails.
    static func stream(
        _ request: Request,
        in call: CallContext,
        stopping: @escaping @Sendable () -> Bool,
        connected: @escaping @Sendable () -> Bool,
        send: (Result<Reply, APIError>, _ continues: Bool) async throws -> Void
    ) async throws
}

/// What a method is answered with: the daemon's services and who called.
struct CallContext: Sendable {
    let services: DaemonServices
    let caller: Caller
}

/// Every method ukeyd serves: the API's, each answered by a service. A method of the API no
/// service answers is a test failure (`DaemonAccessTests`), and `MethodNotFound` to a client.
enum MethodTable {
    static let all: [any ServedMethod.Type] = APIInterface.allMethods.compactMap { $0 as? any ServedMethod.Type }
}
