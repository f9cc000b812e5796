import Logging
import NIOCore
import Synchronization

/// The connections being served: who may take a slot (`ConnectionAdmission`), and the stop's
/// reach to each one: drain it (no new call; closed once its calls in flight are answered, at
/// once when it is idle), and close whatever is left when the stop's deadline passes (a client
/// that does not read its last reply).
final class OpenConnections: Sendable {
    private struct State {
        var next = 0
        var entries: [Int: ConnectionControl] = [:]
        var admission = ConnectionAdmission()
        var draining = false
        var deadline: Task<Void, Never>?
    }

    private let state = Mutex(State())
    /// Read by every answer the immediate lane gives, so a load and not a lock.
    private let stopped = Atomic(false)

    /// Whether the stop began: followers end their streams, the immediate lane answers no more.
    var stopping: Bool { stopped.load(ordering: .acquiring) }

    /// Takes a slot for a peer, or says why not.
    func admit(uid: UInt32, privileged: Bool, limits: ConnectionAdmission.Limits) -> ConnectionAdmission.Refusal? {
        state.withLock { $0.admission.admit(uid: uid, privileged: privileged, limits: limits) }
    }

    /// Gives back the slot `admit` took.
    func leave(uid: UInt32, privileged: Bool) {
        state.withLock { $0.admission.leave(uid: uid, privileged: privileged) }
    }

    /// Registers a connection; drains it at once if the stop has begun.
    func add(_ connection: ConnectionControl) -> Int {
        let (id, draining) = state.withLock { state in
            state.next += 1
            state.entries[state.next] = connection
            return (state.next, state.draining)
        }
        if draining { connection.drain() }
        return id
    }

    func remove(_ id: Int) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    /// The stop: every connection drains, and whatever is still open after `deadline` is closed.
    func drainAll(closingAfter deadline: Duration, logger: Logger) {
        stopped.store(true, ordering: .releasing)
        let entries = state.withLock { state in
            state.draining = true
            state.deadline = Task { [self] in
                guard (try? await Task.sleep(for: deadline)) != nil else { return }
                logger.warning("closing \(count) connection(s) still busy at the stop's deadline")
                closeAll()
            }
            return Array(state.entries.values)
        }
        for connection in entries { connection.drain() }
    }

    /// The listener returned: the deadline has nothing left to close.
    func cancelDeadline() {
        state.withLock { $0.deadline?.cancel() }
    }

    private func closeAll() {
        let channels = state.withLock { $0.entries.values.map(\.channel) }
        for channel in channels { channel.close(promise: nil) }
    }

    var count: Int { state.withLock { $0.entries.count } }
}
