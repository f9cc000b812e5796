/// What a PIN may be. PIV (NIST SP 800-73-4, part 2, section 3.2.1) asks 6-8 digits of its card
/// PIN; ukey allows longer passphrases too, but only printable ASCII, so that a PIN typed on any
/// keyboard layout and sent through any client is the same bytes.
public struct PinRules: Sendable, Hashable, Codable {
    public var minLength: Int
    public var maxLength: Int

    public static let userPIN = PinRules(minLength: 6, maxLength: 64)
    /// The SO PIN unblocks everything: at least 8 characters, as PIV's PUK.
    public static let soPIN = PinRules(minLength: 8, maxLength: 64)

    public init(minLength: Int, maxLength: Int) {
        self.minLength = minLength
        self.maxLength = maxLength
    }

    /// Refuses a PIN that breaks the rules, saying which rule; never echoes the PIN.
    public func check(_ pin: String, what: String) throws(TokenError) {
        guard pin.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw TokenError(
                .invalidPIN,
                "\(what) may contain only printable ASCII characters (no control characters or accents)"
            )
        }
        guard (minLength...maxLength).contains(pin.utf8.count) else {
            throw TokenError(
                .invalidPIN,
                "\(what) must be \(minLength)-\(maxLength) characters long, got \(pin.utf8.count)"
            )
        }
    }
}
