import UkeyConcurrency

/// Where PIN derivations run: an actor on a queue of its own, outside Swift's cooperative thread
/// pool. scrypt is deliberately slow; run on the pool it would occupy a thread per pending check
/// (the pool has one per core) and stall unrelated work. Here checks wait for each other, and
/// the awaiting tasks hold no thread.
actor PinKDF {
    static let shared = PinKDF()

    private let executor = QueueExecutor(label: "ukey.pin-kdf")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    func matches(_ pin: String, _ record: PinRecord) throws(TokenError) -> Bool {
        try record.matches(pin)
    }

    func derive(_ pin: String, salt: [UInt8], kdf: PinRecord.KDF) throws(TokenError) -> [UInt8] {
        try PinRecord.derive(pin, salt: salt, kdf: kdf)
    }
}
