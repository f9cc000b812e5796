import Dispatch

/// Blocking work that may run many at once (hashing two VMs' disk images for two starts), off
/// Swift's cooperative pool: a concurrent queue of its own, so a large file's read never holds a
/// thread the daemon's tasks need. Serial blocking work (a device) is an actor on a
/// `QueueExecutor` instead.
public struct OffPool: Sendable {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label, attributes: .concurrent)
    }

    /// Runs `work` on the queue and gives its result or its error, as typed as it was thrown.
    public func run<T: Sendable, Failure: Error>(
        _ work: @escaping @Sendable () throws(Failure) -> T
    ) async throws(Failure) -> T {
        let result: Result<T, Failure> = await withCheckedContinuation { continuation in
            queue.async {
                do throws(Failure) {
                    continuation.resume(returning: .success(try work()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}
