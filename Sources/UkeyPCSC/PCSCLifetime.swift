import Glibc
import Synchronization

/// When this process may call pcsc-lite. pcsc-lite frees its client state (the lists of contexts
/// and handles) in a destructor as the process exits, and a thread still in a PC/SC call then
/// walks freed lists: ukeyd crashed so in exit, a card handle released on a pool thread while
/// the main thread ran the destructors. Every call into pcsc-lite enters here first, and the
/// daemon's last step, `end`, waits for the calls under way and lets no more in.
public final class PCSCLifetime: Sendable {
    /// The process's one lifetime, which every `SmartCard` uses.
    public static let shared = PCSCLifetime()

    private let state = Mutex<(ended: Bool, inUse: Int)>((false, 0))

    public init() {}

    /// True if the caller may call pcsc-lite now; it must `leave` after. False once ended.
    public func enter() -> Bool {
        state.withLock { state in
            guard !state.ended else { return false }
            state.inUse += 1
            return true
        }
    }

    public func leave() {
        state.withLock { $0.inUse -= 1 }
    }

    public var hasEnded: Bool { state.withLock { $0.ended } }

    /// Lets no new call in and waits up to `seconds` for the calls under way (a card answers in
    /// well under a second; pcscd's own timeouts bound a stuck one). Returns the number of calls
    /// still under way when it gave up: 0 means the process may exit.
    @discardableResult
    public func end(waitingAtMost seconds: Double = 10) -> Int {
        state.withLock { $0.ended = true }
        let deadline = seconds * 1000
        var waited = 0.0
        while true {
            let inUse = state.withLock { $0.inUse }
            if inUse == 0 || waited >= deadline { return inUse }
            usleep(1000)
            waited += 1
        }
    }
}
