import Foundation

/// A replayable random source for the suites' randomized checks.
///
/// A randomized test that fails must be replayable, so every such test draws from one of these
/// and names its seed in each failure message. `UKEY_TEST_SEED=<n> swift test --filter <test>`
/// replays a failure exactly; without it each run draws a fresh seed, so runs keep exploring.
public struct SeededRandom: RandomNumberGenerator, Sendable, CustomStringConvertible {
    public let seed: UInt64
    private var state: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        self.state = seed
    }

    /// The seed from `UKEY_TEST_SEED`, or a fresh one.
    public static func forTest() -> SeededRandom {
        if let text = ProcessInfo.processInfo.environment["UKEY_TEST_SEED"], let seed = UInt64(text) {
            return SeededRandom(seed: seed)
        }
        return SeededRandom(seed: UInt64.random(in: .min ... .max))
    }

    /// SplitMix64: small, fast, and every seed gives a full-period, well-mixed stream.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// What a failure message says, so the failing run can be repeated.
    public var description: String { "replay with UKEY_TEST_SEED=\(seed)" }
}
