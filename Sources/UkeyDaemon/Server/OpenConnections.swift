import NIOCore
import Synchronization

/// The connections being served, so that a stop can reach each one: drain it (no new call; closed
/// once its calls in flight are answered, at once when it is idle), and close whatever is left
/// when the stop's deadline passes (a client that does not read its last reply).
final class OpenConnections: Sendable {
    private struct State {
        var next = 0
        var entries: [Int: (channel: any Channel, slots: ReplySlots)] = [:]
        var draining = false
    }

    private let state = Mutex(State())

    /// Registers a connection; drains it at once if the stop has begun.
    func add(_ channel: any Channel, slots: ReplySlots) -> Int {
        let (id, draining) = state.withLock { state in
            state.next += 1
            state.entries[state.next] = (channel, slots)
            return (state.next, state.draining)
        }
        if draining { slots.drain { channel.close(promise: nil) } }
        return id
    }

    func remove(_ id: Int) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    /// The stop: every connection drains.
    func drainAll() {
        let entries = state.withLock { state in
            state.draining = true
            return Array(state.entries.values)
        }
        for (channel, slots) in entries { slots.drain { channel.close(promise: nil) } }
    }

    /// The stop's deadline: whatever is still open is closed.
    func closeAll() {
        let channels = state.withLock { $0.entries.values.map(\.channel) }
        for channel in channels { channel.close(promise: nil) }
    }

    var count: Int { state.withLock { $0.entries.count } }
}
