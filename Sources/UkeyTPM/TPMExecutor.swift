import Dispatch

/// The serial executor the `TPM` actor runs on: a dispatch queue of its own. TPM commands block
/// in the TCTI's read (a hardware TPM takes 50-200 ms to create a key); on this queue they never
/// hold one of the cooperative pool's threads, of which a 2-core host has two.
final class TPMExecutor: SerialExecutor {
    private let queue = DispatchQueue(label: "ukey.tpm")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets `assumeIsolated` accept code that runs on the queue outside a job (see `sync`).
    func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }

    /// Runs `body` on the queue, between the actor's jobs, and waits for it: for callers that
    /// must be synchronous (swift-certificates' signing, the sealed store's key protector). It
    /// must not be called from the queue itself.
    func sync<T>(_ body: () -> T) -> T {
        dispatchPrecondition(condition: .notOnQueue(queue))
        return queue.sync(execute: body)
    }
}
