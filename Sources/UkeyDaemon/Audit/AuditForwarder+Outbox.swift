import Synchronization

extension AuditForwarder {
    /// The lines waiting to be sent, bounded: past `capacity` the oldest are dropped and counted.
    /// It also knows whether a sender run is under way, so exactly one caller starts one, and it
    /// keeps the continuations of whoever waits for it to empty (`stop`).
    final class Outbox: Sendable {
        private struct State {
            var lines: [[UInt8]] = []
            var dropped = 0
            var stopping = false
            /// A sender run is under way or starting: nobody else starts one.
            var running = false
            var emptyWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
            var nextWaiter: UInt64 = 0

            mutating func claim() -> Bool {
                guard !running else { return false }
                running = true
                return true
            }
        }

        private let state = Mutex(State())

        /// Queues `lines`; true if the caller must start the sender.
        func append(_ lines: [[UInt8]]) -> Bool {
            state.withLock { state in
                state.lines.append(contentsOf: lines)
                if state.lines.count > AuditForwarder.capacity {
                    let excess = state.lines.count - AuditForwarder.capacity
                    state.lines.removeFirst(excess)
                    state.dropped += excess
                }
                return state.claim()
            }
        }

        /// The next line to send; nil when there is none, which ends the sender's run.
        func next() -> [UInt8]? {
            state.withLock { state in
                guard let line = state.lines.first else {
                    state.running = false
                    return nil
                }
                return line
            }
        }

        /// The line `next` gave was sent. Returns the records dropped since the last send.
        func sent() -> Int {
            let (missed, emptied) = state.withLock { state in
                state.lines.removeFirst()
                defer { state.dropped = 0 }
                guard state.lines.isEmpty else { return (state.dropped, [CheckedContinuation<Void, Never>]()) }
                defer { state.emptyWaiters.removeAll() }
                return (state.dropped, Array(state.emptyWaiters.values))
            }
            emptied.forEach { $0.resume() }
            return missed
        }

        /// The sender gives up (stopping, the collector away) with lines left.
        func endRun() { state.withLock { $0.running = false } }

        var stopping: Bool { state.withLock { $0.stopping } }

        /// No more retries once the collector is away. True if the caller must start the sender,
        /// to close its socket.
        func stop() -> Bool {
            let (claimed, waiters) = state.withLock { state in
                state.stopping = true
                defer { state.emptyWaiters.removeAll() }
                return (state.claim(), Array(state.emptyWaiters.values))
            }
            waiters.forEach { $0.resume() }
            return claimed
        }

        /// Returns once every queued line is sent, the forwarder stops, or the task is cancelled.
        func waitUntilEmpty() async {
            let id = state.withLock { state in
                state.nextWaiter += 1
                return state.nextWaiter
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now = state.withLock { state in
                        if state.lines.isEmpty || state.stopping || Task.isCancelled { return true }
                        state.emptyWaiters[id] = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                state.withLock { $0.emptyWaiters.removeValue(forKey: id) }?.resume()
            }
        }
    }
}
