import Crypto
import CryptoExtras

/// A stored PIN: a scrypt verifier with a per-PIN salt, and the retry counter.
///
/// scrypt is memory-hard, so guessing PINs offline from a stolen store costs memory as well as
/// time: with the default N = 2^15, r = 8, p = 1, each guess needs 32 MiB and about 0.1 s here.
public struct PinRecord: Sendable, Hashable, Codable {
    public struct KDF: Sendable, Hashable, Codable {
        public var logN: Int
        public var r: Int
        public var p: Int

        /// The production setting.
        public static let standard = KDF(logN: 15, r: 8, p: 1)
        /// For tests that check many PINs; never the default.
        public static let fastForTests = KDF(logN: 10, r: 8, p: 1)

        public init(logN: Int, r: Int, p: Int) {
            self.logN = logN
            self.r = r
            self.p = p
        }
    }

    public var salt: [UInt8]
    public var kdf: KDF
    public var verifier: [UInt8]
    public var triesLeft: Int
    public var maxTries: Int

    /// A new record for `pin` with all tries available.
    public init(pin: String, maxTries: Int, kdf: KDF) throws(TokenError) {
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = UInt8.random(in: 0...255, using: &generator) }
        self.salt = salt
        self.kdf = kdf
        self.verifier = try Self.derive(pin, salt: salt, kdf: kdf)
        self.triesLeft = maxTries
        self.maxTries = maxTries
    }

    /// The record of a user whose PIN is on their own card (users = "pcsc"): the card counts the
    /// tries, so the store keeps no verifier at all, and a soft check of it is always refused.
    public static func heldByCard(kdf: KDF) -> PinRecord {
        PinRecord(salt: [], kdf: kdf, verifier: [], triesLeft: 0, maxTries: 0)
    }

    private init(salt: [UInt8], kdf: KDF, verifier: [UInt8], triesLeft: Int, maxTries: Int) {
        self.salt = salt
        self.kdf = kdf
        self.verifier = verifier
        self.triesLeft = triesLeft
        self.maxTries = maxTries
    }

    /// Whether `pin` matches, compared in constant time. Does not touch the counter.
    public func matches(_ pin: String) throws(TokenError) -> Bool {
        Self.constantTimeEqual(try Self.derive(pin, salt: salt, kdf: kdf), verifier)
    }

    static func derive(_ pin: String, salt: [UInt8], kdf: KDF) throws(TokenError) -> [UInt8] {
        do {
            let key = try CryptoExtras.KDF.Scrypt.deriveKey(
                from: Array(pin.utf8),
                salt: salt,
                outputByteCount: 32,
                rounds: 1 << kdf.logN,
                blockSize: kdf.r,
                parallelism: kdf.p
            )
            return key.withUnsafeBytes { Array($0) }
        } catch {
            throw TokenError(.crypto, "scrypt failed: \(error)")
        }
    }

    /// Compares without an early exit, so the time taken does not reveal where two values differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
