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
}
