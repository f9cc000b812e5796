import Foundation
import Synchronization

/// Where `enqueue` leaves records for the writer: the daemon's hot path appends here under a lock
/// held for an append, and the writer takes everything at once. It also knows whether a writer
/// run is under way, so that exactly one caller (the first after the writer went idle) starts one.
final class AuditIntake: Sendable {
    private struct State {
        var pending: [(entry: AuditEntry, time: Date)] = []
        /// Tickets handed out: the nth record appended is ticket n, as `AuditWriterState` counts.
        var issued: UInt64 = 0
        var closing = false
        /// A writer run is under way or starting: nobody else starts one.
        var running = false

        mutating func claim() -> Bool {
            guard !running else { return false }
            running = true
            return true
        }
    }

    private let state = Mutex(State())

    /// Queues a record, stamped with the time under the lock so that times follow ticket order:
    /// its ticket, and true if the caller must start the writer.
    func append(_ entry: AuditEntry) -> (ticket: UInt64, start: Bool) {
        state.withLock { state in
            state.pending.append((entry, Date()))
            state.issued += 1
            return (state.issued, state.claim())
        }
    }

    /// Asks the writer to finish; true if the caller must start it.
    func close() -> Bool {
        state.withLock { state in
            state.closing = true
            return state.claim()
        }
    }

    var closing: Bool { state.withLock { $0.closing } }

    /// For a timer: true if the caller must start the writer (none is running).
    func claim() -> Bool { state.withLock { $0.claim() } }

    /// Everything queued, for the running writer, and the last ticket handed out.
    func take() -> (pending: [(entry: AuditEntry, time: Date)], issued: UInt64, closing: Bool) {
        state.withLock { state in
            defer { state.pending = [] }
            return (state.pending, state.issued, state.closing)
        }
    }

    /// The writer has nothing to do: it ends its run unless a record came in since it looked
    /// (then false, and it goes on). Under the same lock as `append`, so no record is left behind.
    func finishRun() -> Bool {
        state.withLock { state in
            guard state.pending.isEmpty && !state.closing else { return false }
            state.running = false
            return true
        }
    }
}
