import Synchronization

/// What the writer has made durable, and everyone who waits on it: callers for their tickets
/// (`durable`), followers for new records (`waitForRecords`, `follow`), and `close` for the
/// writer to stop. The one place the log keeps continuations; each is resumed outside the lock.
final class AuditProgress: Sendable {
    private struct State {
        var durableThrough: UInt64 = 0
        var lastSeq: UInt64
        var batches = 0
        /// Set when the writer stops (failed or closed): waiting tickets fail with it.
        var failure: AuditError?
        var tickets: [(ticket: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var recordWaiters: [UInt64: (after: UInt64, continuation: CheckedContinuation<Void, Never>)] = [:]
        var followers: [UInt64: AsyncStream<Void>.Continuation] = [:]
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
        var nextID: UInt64 = 0

        mutating func newID() -> UInt64 {
            nextID += 1
            return nextID
        }
    }

    private let state: Mutex<State>

    init(lastSeq: UInt64) {
        state = Mutex(State(lastSeq: lastSeq))
    }

    var lastSeq: UInt64 { state.withLock { $0.lastSeq } }
    var batches: Int { state.withLock { $0.batches } }

    // MARK: waiting

    /// Returns once `ticket` is durable; throws the reason if the log stopped first.
    func durable(_ ticket: UInt64) async throws(AuditError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Result<Void, AuditError>? in
                    if state.durableThrough >= ticket { return .success(()) }
                    if let failure = state.failure { return .failure(failure) }
                    state.tickets.append((ticket, continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } catch {
            throw (error as? AuditError) ?? AuditError(.io, "\(error)")
        }
    }

    /// Returns once a record after `seq` is durable, the log stops, or the task is cancelled.
    func waitForRecords(after seq: UInt64) async {
        let id = state.withLock { $0.newID() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state in
                    if state.lastSeq > seq || state.failure != nil || Task.isCancelled { return true }
                    state.recordWaiters[id] = (seq, continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.recordWaiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    /// Wakes (coalesced) after each batch, until `cancel` or the log stops.
    func follow(finished: Bool) -> (updates: AsyncStream<Void>, cancel: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state -> UInt64? in
            guard !finished && state.failure == nil else { return nil }
            let id = state.newID()
            state.followers[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish()
            return (stream, {})
        }
        return (stream, { [weak self] in self?.state.withLock { $0.followers.removeValue(forKey: id) }?.finish() })
    }

    /// Returns once the writer has stopped.
    func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stopped = state.withLock { state in
                if state.failure != nil { return true }
                state.closeWaiters.append(continuation)
                return false
            }
            if stopped { continuation.resume() }
        }
    }

    // MARK: the writer's reports

    /// A pass of the writer is done: tickets through `through` are durable, the log ends at
    /// `lastSeq`; `batch`: it wrote callers' records (counted in `batches`).
    func advance(through: UInt64, lastSeq: UInt64, batch: Bool) {
        let (ready, updated, followers) = state.withLock { state in
            state.durableThrough = max(state.durableThrough, through)
            state.lastSeq = lastSeq
            if batch { state.batches += 1 }
            var ready: [CheckedContinuation<Void, any Error>] = []
            state.tickets.removeAll { waiter in
                guard waiter.ticket <= through else { return false }
                ready.append(waiter.continuation)
                return true
            }
            var updated: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in state.recordWaiters where waiter.after < lastSeq {
                updated.append(waiter.continuation)
                state.recordWaiters[id] = nil
            }
            return (ready, updated, Array(state.followers.values))
        }
        ready.forEach { $0.resume() }
        updated.forEach { $0.resume() }
        followers.forEach { $0.yield() }
    }

    /// The writer has stopped: every ticket still waiting, and every one asked for later, fails
    /// with `reason`; followers and `close` are released.
    func stop(_ reason: AuditError) {
        let (failed, updated, followers, closed) = state.withLock { state in
            state.failure = state.failure ?? reason
            defer {
                state.tickets.removeAll()
                state.recordWaiters.removeAll()
                state.followers.removeAll()
                state.closeWaiters.removeAll()
            }
            return (
                state.tickets.map(\.continuation), state.recordWaiters.values.map(\.continuation),
                Array(state.followers.values), state.closeWaiters
            )
        }
        failed.forEach { $0.resume(throwing: reason) }
        updated.forEach { $0.resume() }
        for follower in followers {
            follower.yield()
            follower.finish()
        }
        closed.forEach { $0.resume() }
    }
}
