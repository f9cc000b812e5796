import Foundation
import Synchronization

/// The exec guards ukeyd has heard from, and which of them went away without saying so. While
/// no guard runs, the kernel lets every exec through; a guard that is killed says nothing, so
/// ukeyd watches for it: a host guard holds a connection open for its whole life (its start is a
/// `more` call that never ends), and a guest's guard asks at least once a second over its VM's
/// channel. A closed connection, or a channel silent for `silence`, with no stop said first, is
/// a lost guard: recorded (`guard` record, event `lost`) and shown by `ukeyctl status`.
final class GuardRegistry: Sendable {
    /// How a guard reaches ukeyd.
    enum Via: String, Sendable {
        case socket, channel
    }

    enum State: String, Sendable {
        case running, stopped, lost
    }

    struct Key: Hashable, Sendable {
        let vm: String
        let via: Via
        /// The guard's process on the host (socket); 0 for a guest's (its pid is the guest's).
        let pid: Int32
    }

    struct Entry: Sendable {
        var state: State
        var since: Date
        var reason: String?
    }

    /// A guest's guard asks every second; this much silence means it is gone.
    static let silence: TimeInterval = 5

    private let entries = Mutex<[Key: Entry]>([:])
    private let clock: @Sendable () -> Date

    init(clock: @escaping @Sendable () -> Date = { Date() }) {
        self.clock = clock
    }

    func started(_ key: Key) {
        entries.withLock { $0[key] = Entry(state: .running, since: clock()) }
    }

    func stopped(_ key: Key) {
        entries.withLock { $0[key] = Entry(state: .stopped, since: clock()) }
    }

    /// Marks a running guard lost; true when it was running (so the loss is recorded once).
    func lost(_ key: Key, reason: String) -> Bool {
        entries.withLock { entries in
            guard entries[key]?.state == .running else { return false }
            entries[key] = Entry(state: .lost, since: clock(), reason: reason)
            return true
        }
    }

    func state(_ key: Key) -> State? {
        entries.withLock { $0[key]?.state }
    }

    /// Every guard heard from, for `Admin.Status`, in a stable order.
    func snapshot() -> [(key: Key, entry: Entry)] {
        entries.withLock { entries in
            entries.map { ($0.key, $0.value) }.sorted {
                ($0.key.vm, $0.key.via.rawValue, $0.key.pid) < ($1.key.vm, $1.key.via.rawValue, $1.key.pid)
            }
        }
    }
}
