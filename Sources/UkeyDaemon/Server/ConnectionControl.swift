import NIOCore
import Synchronization

/// One connection's state machine, shared by everything that reports to it: its reader, its
/// sender, the stop (`OpenConnections`) and the idle timer. The one place the reader waits: it
/// suspends only when the machine says `wait`, and any report from elsewhere wakes it to ask
/// again.
final class ConnectionControl: Sendable {
    typealias Machine = ConnectionStateMachine<MeasurementTicket>

    /// Enough for a hypervisor that pipelines a batch of measurements; with 1 KiB replies
    /// (`Token.Random`), about 100 KiB held for a client that does not read.
    static let perConnection = 64

    private struct State {
        var machine: Machine
        /// Bumped by every report from outside the reader, so a wait that began after one
        /// returns at once.
        var reports: UInt64 = 0
        var waiter: CheckedContinuation<Void, Never>?
    }

    let channel: any Channel
    private let state: Mutex<State>

    init(channel: any Channel, _ configuration: Machine.Configuration) {
        self.channel = channel
        state = Mutex(State(machine: Machine(configuration)))
    }

    /// A step that cannot let the waiting reader go on (the reader's own, a reply ready), so
    /// it wakes nobody.
    func step<Result>(_ step: (inout Machine) -> Result) -> Result {
        state.withLock { step(&$0.machine) }
    }

    /// The reader's next step, waiting while the machine says `wait`.
    func next(connected: @autoclosure () -> Bool) async -> Machine.ReadAction {
        while true {
            let (action, seen) = state.withLock { ($0.machine.next(connected: connected()), $0.reports) }
            guard case .wait = action else { return action }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { state in
                        guard state.reports == seen, !Task.isCancelled else { return true }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                report { $0.closed() }
            }
        }
    }

    /// A report from outside the reader (a reply written, the stop, the end): wakes the reader.
    @discardableResult
    func report<Result>(_ event: (inout Machine) -> Result) -> Result {
        let (result, waiter) = state.withLock { state in
            let result = event(&state.machine)
            state.reports &+= 1
            defer { state.waiter = nil }
            return (result, state.waiter)
        }
        waiter?.resume()
        return result
    }

    /// The stop: no new call; closed once nothing is in flight (now, if nothing is).
    func drain() {
        if report({ $0.drain() }) { channel.close(promise: nil) }
    }

    /// The idle timer fired (on the event loop): whether to close.
    func idleTimedOut() -> Bool {
        report { $0.idleTimedOut() }
    }
}
