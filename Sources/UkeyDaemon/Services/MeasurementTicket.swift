import Synchronization
import UkeyVarlink

/// The answer to one queued measurement, which the batch that takes it fills in.
///
/// A connection hands its measurements to the queue without waiting for each answer (its
/// sender waits, in call order), so pipelined measurements from one connection share a batch,
/// and its calls that are not measurements wait with `settled` for the ones before them.
/// Waiting on an answer that is already there does not suspend.
final class MeasurementTicket: Sendable {
    typealias Outcome = Result<[String: JSONValue], VarlinkError>

    private enum State {
        case waiting([CheckedContinuation<Outcome, Never>])
        case answered(Outcome)
    }

    private let state = Mutex(State.waiting([]))

    /// Called once, by the batch; later calls are ignored.
    func answer(_ outcome: Outcome) {
        let waiters: [CheckedContinuation<Outcome, Never>] = state.withLock { state in
            guard case .waiting(let waiters) = state else { return [] }
            state = .answered(outcome)
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: outcome) }
    }

    /// The answer, once the measurement's batch is done.
    func outcome() async -> Outcome {
        if case .answered(let outcome) = state.withLock({ $0 }) { return outcome }
        return await withCheckedContinuation { continuation in
            let ready: Outcome? = state.withLock { state in
                switch state {
                case .answered(let outcome): return outcome
                case .waiting(let waiters):
                    state = .waiting(waiters + [continuation])
                    return nil
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
