import Dispatch

/// The serial executor a hardware actor runs on (the `TPM`, the `SmartCard`): a dispatch queue of
/// its own. Their commands block in a read (a hardware TPM takes 50-200 ms to create a key, a card
/// as long to sign); on this queue they never hold one of the cooperative pool's threads, of which
/// a 2-core host has two.
public final class QueueExecutor: SerialExecutor {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets `assumeIsolated` accept code that runs on the queue outside a job (see `sync`).
    public func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }

    /// Runs `body` on the queue, between the actor's jobs, and waits for it: for callers that
    /// must be synchronous (swift-certificates' signing, the sealed store's key protector). It
    /// must not be called from the queue itself.
    public func sync<T>(_ body: () -> T) -> T {
        dispatchPrecondition(condition: .notOnQueue(queue))
        return queue.sync(execute: body)
    }
}
