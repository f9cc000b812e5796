/// A FIFO lock for async code inside an actor: actor methods may interleave at every `await`,
/// so operations that must not (a measurement's chain update, register extend and journal
/// append) take the gate first. Waiters are resumed in arrival order.
struct SerialGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    mutating func enter() -> CheckedContinuation<Void, Never>?? {
        if !busy {
            busy = true
            return .some(nil)
        }
        return nil
    }

    mutating func enqueue(_ continuation: CheckedContinuation<Void, Never>) {
        waiters.append(continuation)
    }

    /// Hands the gate to the next waiter, or frees it.
    mutating func leave() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
