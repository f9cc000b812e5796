/// A counter that only goes up and that a copy of the state directory cannot carry back: a TPM's
/// NV counter. A store bound to one records the value it was written at; opening a store that is
/// behind the counter is a rollback (an older copy put back) and fails.
public protocol MonotonicCounter: Sendable {
    func value() throws(StoreError) -> UInt64
    /// Adds one; returns the new value.
    func increment() throws(StoreError) -> UInt64
}

extension StoreKeyProtector {
    /// None by default: the device-key protector has nothing a copy cannot carry back.
    public var counter: (any MonotonicCounter)? { nil }
}
