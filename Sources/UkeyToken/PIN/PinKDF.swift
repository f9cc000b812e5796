import Dispatch

/// Where PIN derivations run: one serial queue outside Swift's cooperative thread pool. scrypt is
/// deliberately slow; run on the pool it would occupy a thread per pending check (the pool has one
/// per core) and stall unrelated work. Here checks wait for each other, and the awaiting tasks
/// hold no thread.
enum PinKDF {
    static let queue = DispatchQueue(label: "ukey.pin-kdf", qos: .userInitiated)

    static func matches(_ pin: String, _ record: PinRecord) async throws(TokenError) -> Bool {
        let result: Result<Bool, TokenError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: Result { () throws(TokenError) in try record.matches(pin) })
            }
        }
        return try result.get()
    }

    static func derive(_ pin: String, salt: [UInt8], kdf: PinRecord.KDF) async throws(TokenError) -> [UInt8] {
        let result: Result<[UInt8], TokenError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(
                    returning: Result { () throws(TokenError) in try PinRecord.derive(pin, salt: salt, kdf: kdf) }
                )
            }
        }
        return try result.get()
    }
}
