import X509

/// The outcome of a PIN check. A wrong PIN is a value, not an error (a denial is a value, so callers must handle it).
public enum PinVerdict: Sendable, Hashable {
    case accepted
    /// Wrong PIN; this many tries remain before the PIN locks.
    case rejected(retriesLeft: Int)
    /// No tries remain (now or before this call); only the SO PIN unblocks it.
    case locked
    /// There is no such user. The check took as long as a real one, so timing does not tell.
    case unknownUser
}

/// The user role of a trusted root (architecture.md section 3): PINs with a persistent retry counter
/// that is decremented before the check, lockout, and unblock with the SO PIN (PIV's PUK).
public protocol UsersRole: Sendable {
    func addUser(_ name: String, pin: String, roles: [String]) async throws(TokenError)
    /// Adds a user and returns the user CA's certificate of their identity key.
    func addUserReturningCertificate(
        _ name: String,
        pin: String,
        roles: [String]
    ) async throws(TokenError) -> TokenCertificate
    func verifyPIN(user: String, pin: String) async throws(TokenError) -> PinVerdict
    /// Unblocks (or resets) a user's PIN with the SO PIN; the SO PIN's own counter applies.
    func unblockPIN(user: String, soPIN: String, newPIN: String) async throws(TokenError) -> PinVerdict
    /// Tries left for a user's PIN, and its maximum.
    func pinStatus(user: String) async throws(TokenError) -> (triesLeft: Int, maxTries: Int)
    /// Tries left for the SO PIN, and its maximum.
    func soPINStatus() async throws(TokenError) -> (triesLeft: Int, maxTries: Int)
}
