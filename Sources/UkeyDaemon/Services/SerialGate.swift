/// A FIFO lock for async code on `DaemonActor`: isolated code may interleave at every `await`,
/// so operations that must not (a measurement batch's journal append, register extend and chain
/// update; a policy's check and adoption) take the gate first. Waiters go in arrival order.
@DaemonActor
final class SerialGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    nonisolated init() {}

    /// Runs `body` with no other gated operation interleaved; its error, typed or not, passes
    /// through as it is.
    func serialized<T, Failure: Error>(_ body: () async throws(Failure) -> T) async throws(Failure) -> T {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
        defer { leave() }
        return try await body()
    }

    /// Hands the gate to the next waiter, or frees it.
    private func leave() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
