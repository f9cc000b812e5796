import UkeyAPI
import UkeyAudit
import UkeyVarlink

/// A served method with its request read, its reply written and its records described, once
/// for every method: what the dispatcher runs. The parameters are read into the method's typed
/// request and checked (`APIMessage.validate`) before the method sees them.
struct Route: Sendable {
    /// What answering a call came to: the reply to send and the records it leaves.
    struct Outcome: Sendable {
        let method: String
        let reply: VarlinkReply
        let records: [AuditRecord]
        /// Set when the call was refused before its method ran.
        let refusal: Refusal?
    }

    enum Refusal: Sendable {
        /// The parameters did not read as the method's request.
        case invalid(parameter: String)
    }

    enum Submitted: Sendable {
        case queued(MeasurementTicket)
        /// Answered without queueing (its request could not be read).
        case answered(Outcome)
        /// This call is not one to queue: answer it the usual way.
        case notQueued
    }

    typealias Answer = @Sendable ([String: JSONValue], CallContext) async -> Outcome
    typealias Submit =
        @Sendable ([String: JSONValue], CallContext, _ record: @escaping Recorder) async -> Submitted
    typealias Recorder = @Sendable ([AuditRecord]) -> (AuditLog.Ticket?, AuditLog?)
    typealias Stream =
        @Sendable (
            [String: JSONValue], CallContext, _ stopping: @escaping @Sendable () -> Bool,
            _ connected: @escaping @Sendable () -> Bool,
            _ send: (Outcome) async throws -> Void
        ) async throws -> Void
    /// nil when the method failed: the usual path answers (and records) it.
    typealias Immediate = @Sendable ([String: JSONValue], CallContext) -> Outcome?

    let role: Role?
    let answer: Answer
    /// Queues the call's work instead of answering it (`QueuedMethod`).
    let submit: Submit?
    /// Answers a call made with `more: true` by streaming (`StreamingMethod`).
    let stream: Stream?
    /// Answers without waiting (`ImmediateMethod`).
    let immediate: Immediate?

    init<M: ServedMethod>(_ method: M.Type) {
        role = M.role
        if let constant = method as? any ConstantMethod.Type {
            answer = Self.constantAnswer(constant)
        } else {
            answer = Self.answerer(M.self)
        }
        submit = (method as? any QueuedMethod.Type).map { Self.submitter($0) }
        stream = (method as? any StreamingMethod.Type).map { Self.streamer($0) }
        immediate = (method as? any ImmediateMethod.Type).map { Self.immediateAnswerer($0) }
    }

    private static func answerer<M: ServedMethod>(_ method: M.Type) -> Answer {
        { parameters, call async in
            let request: M.Request
            do throws(APIError) {
                request = try Self.read(M.self, parameters)
            } catch {
                return Self.refused(M.self, error)
            }
            do throws(APIError) {
                return Self.outcome(M.self, request, .success(try await M.answer(request, in: call)))
            } catch {
                return Self.outcome(M.self, request, .failure(error))
            }
        }
    }

    /// The reply written once; the call's parameters, which it takes none of, are not read.
    private static func constantAnswer<M: ConstantMethod>(_ method: M.Type) -> Answer {
        let once = outcome(M.self, Empty(), .success(M.reply))
        let done = Outcome(method: once.method, reply: once.reply.framedOnce(), records: once.records, refusal: nil)
        return { _, _ in done }
    }

    /// The method's request, read from the call's parameters and checked.
    static func read<M: APIMethod>(_ method: M.Type, _ parameters: [String: JSONValue]) throws(APIError) -> M.Request {
        try M.Request(wire: parameters)
    }

    static func outcome<M: APIMethod>(
        _ method: M.Type,
        _ request: M.Request,
        _ result: Result<M.Reply, APIError>
    )
        -> Outcome
    {
        Outcome(method: M.name, reply: reply(result), records: M.audit(request, result), refusal: nil)
    }

    static func refused<M: APIMethod>(_ method: M.Type, _ error: APIError) -> Outcome {
        let parameter: String
        if case .invalidParameter(let name) = error { parameter = name } else { parameter = "" }
        return Outcome(
            method: M.name,
            reply: .failure(error.varlink),
            records: [],
            refusal: .invalid(parameter: parameter)
        )
    }

    static func reply<Reply: APIMessage>(_ result: Result<Reply, APIError>) -> VarlinkReply {
        switch result {
        case .success(let reply): VarlinkReply(parameters: reply.wire)
        case .failure(let error): .failure(error.varlink)
        }
    }

    private static func immediateAnswerer<M: ImmediateMethod>(_ method: M.Type) -> Immediate {
        { parameters, call in
            guard let request = try? read(M.self, parameters), let reply = try? M.answerNow(request, in: call) else {
                return nil
            }
            return outcome(M.self, request, .success(reply))
        }
    }

    private static func submitter<M: QueuedMethod>(_ method: M.Type) -> Submit {
        { parameters, call, record async in
            let request: M.Request
            do throws(APIError) {
                request = try read(M.self, parameters)
            } catch {
                return .answered(refused(M.self, error))
            }
            let origin = MeasurementTicket.Origin { result in record(M.audit(request, result)) }
            do throws(APIError) {
                guard let ticket = try await M.submit(request, in: call, origin: origin) else { return .notQueued }
                return .queued(ticket)
            } catch {
                return .answered(outcome(M.self, request, .failure(error)))
            }
        }
    }

    private static func streamer<M: StreamingMethod>(_ method: M.Type) -> Stream {
        { parameters, call, stopping, connected, send in
            let request: M.Request
            do throws(APIError) {
                request = try read(M.self, parameters)
            } catch {
                return try await send(refused(M.self, error))
            }
            try await M.stream(request, in: call, stopping: stopping, connected: connected) { result, continues in
                let done = outcome(M.self, request, result)
                var reply = done.reply
                reply.continues = continues
                try await send(Outcome(method: done.method, reply: reply, records: done.records, refusal: nil))
            }
        }
    }
}
