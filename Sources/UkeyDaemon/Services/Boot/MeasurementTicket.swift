import Synchronization
import UkeyAudit

/// The answer to one queued measurement, which the batch that takes it fills in.
///
/// A connection hands its measurements to the queue without waiting for each answer (its
/// sender waits, in call order), so pipelined measurements from one connection share a batch,
/// and its calls that are not measurements wait with `answer()` for the ones before them.
/// Waiting on an answer that is already there does not suspend.
final class MeasurementTicket: Sendable {
    struct Answer: Sendable {
        let result: Result<Boot.Measure.Reply, APIError>
        /// The measurement's audit records, queued by the batch in measurement order, when the
        /// call came over the socket (`Dispatcher.start`); nil for in-process callers.
        let audit: AuditLog.Ticket?
        let log: AuditLog?
    }

    /// Who asked: records the call's audit entries when the batch answers it, so they are
    /// queued in the order the measurements were made.
    struct Origin: Sendable {
        let record: @Sendable (Result<Boot.Measure.Reply, APIError>) -> (AuditLog.Ticket?, AuditLog?)
    }

    let origin: Origin?

    private enum State {
        case waiting([CheckedContinuation<Answer, Never>])
        case answered(Answer)
    }

    private let state = Mutex(State.waiting([]))

    init(origin: Origin?) {
        self.origin = origin
    }

    /// Called once, by the batch, with the verdict; its audit records are queued first. Later
    /// calls are ignored.
    func fulfil(_ result: Result<Boot.Measure.Reply, APIError>) {
        let (ticket, log) = origin?.record(result) ?? (nil, nil)
        let answer = Answer(result: result, audit: ticket, log: log)
        let waiters: [CheckedContinuation<Answer, Never>] = state.withLock { state in
            guard case .waiting(let waiters) = state else { return [] }
            state = .answered(answer)
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: answer) }
    }

    /// The answer, once the measurement's batch is done (its audit records are queued by then).
    func answer() async -> Answer {
        if case .answered(let answer) = state.withLock({ $0 }) { return answer }
        return await withCheckedContinuation { continuation in
            let ready: Answer? = state.withLock { state in
                switch state {
                case .answered(let answer): return answer
                case .waiting(let waiters):
                    state = .waiting(waiters + [continuation])
                    return nil
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
