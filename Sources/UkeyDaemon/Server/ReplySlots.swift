import Synchronization

/// The replies one connection may have in flight: calls read and not yet answered on the wire.
///
/// The connection's reader takes a slot before it starts a call and the sender gives it back once
/// the reply is written. A client that writes calls and never reads its replies fills the slots;
/// the reader then stops taking bytes from the socket, NIO stops reading (the inbound stream's
/// backpressure), the kernel's buffer fills and the client's writes block. So such a client
/// costs ukeyd a bounded amount of memory, however much it sends.
///
/// At shutdown the connection drains: no new call is started, and once the calls in flight are
/// answered (at once, for an idle connection) `onIdle` closes it.
final class ReplySlots: Sendable {
    /// Enough for a hypervisor that pipelines a batch of measurements; with 1 KiB replies
    /// (`Token.Random`), about 100 KiB held for a client that does not read.
    static let perConnection = 64

    private struct State {
        let capacity: Int
        var free: Int
        var waiter: CheckedContinuation<Bool, Never>?
        var closed = false
        var onIdle: (@Sendable () -> Void)?
        var idle: Bool { free == capacity }
    }

    private let state: Mutex<State>

    init(_ count: Int = perConnection) {
        state = Mutex(State(capacity: count, free: count))
    }

    /// Waits for a free slot; false when the connection closed or drains (or the task was
    /// cancelled) first. One reader per connection, so one waiter at most.
    func acquire() async -> Bool {
        let ready = state.withLock { state -> Bool? in
            if state.closed || state.onIdle != nil { return false }
            if state.free > 0 {
                state.free -= 1
                return true
            }
            return nil
        }
        if let ready { return ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool? in
                    if state.closed || state.onIdle != nil || Task.isCancelled { return false }
                    if state.free > 0 {
                        state.free -= 1
                        return true
                    }
                    state.waiter = continuation
                    return nil
                }
                if let resumeNow { continuation.resume(returning: resumeNow) }
            }
        } onCancel: {
            close()
        }
    }

    /// A reply was written (or dropped): its slot is free again.
    func release() {
        let (waiter, idle) = state.withLock { state -> (CheckedContinuation<Bool, Never>?, (@Sendable () -> Void)?) in
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, nil)
            }
            state.free = min(state.capacity, state.free + 1)
            return (nil, state.idle ? state.onIdle : nil)
        }
        waiter?.resume(returning: true)
        idle?()
    }

    /// Starts no new call from now on, and runs `onIdle` once no call is in flight: now, if none is.
    func drain(onIdle: @escaping @Sendable () -> Void) {
        let (waiter, runNow) = state.withLock { state -> (CheckedContinuation<Bool, Never>?, Bool) in
            state.onIdle = onIdle
            defer { state.waiter = nil }
            return (state.waiter, state.idle)
        }
        waiter?.resume(returning: false)
        if runNow { onIdle() }
    }

    /// The connection is over: a waiting reader gives up.
    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: false)
    }
}
