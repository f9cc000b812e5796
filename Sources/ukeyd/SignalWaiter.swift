import Dispatch
import Foundation

/// Turns process signals into something async code can wait for.
///
/// @unchecked Sendable: `sources` is written once in init and only kept alive afterwards
/// (a dispatch source that is released stops delivering).
final class SignalWaiter: @unchecked Sendable {
    private let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32]) {
        var continuation: AsyncStream<Int32>.Continuation!
        stream = AsyncStream { continuation = $0 }
        let yield = continuation!
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { yield.yield(number) }
            source.resume()
            return source
        }
    }

    /// Returns true when the next of the signals arrives; false when the waiting task is
    /// cancelled (the stream ends then), so a caller never takes a cancellation for a signal.
    func wait() async -> Bool {
        var iterator = stream.makeAsyncIterator()
        return await iterator.next() != nil && !Task.isCancelled
    }
}
