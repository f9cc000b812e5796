import Crypto
import UkeyCore
import X509

extension SoftToken: UsersRole {
    /// User names appear in certificates, audit records and on the wire: a conservative charset.
    static let nameCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

    public func addUser(_ name: String, pin: String, roles: [String]) async throws(TokenError) {
        _ = try await addUserReturningCertificate(name, pin: pin, roles: roles)
    }

    /// Creates a user with a new key in the token's algorithm (P-256, or SM2 with the token's ID)
    /// and an identity certificate from the user CA. The certificate is signed between two
    /// isolated steps; the second refuses if the name was taken meanwhile (two adds of one name:
    /// one wins, the other is told the user exists).
    public nonisolated func addUserReturningCertificate(
        _ name: String,
        pin: String,
        roles: [String]
    ) async throws(TokenError) -> TokenCertificate {
        let (record, key, issuer) = try await prepareUser(name, pin: pin, roles: roles)
        let certificate = try await issuer.issueIdentity(name, subjectKey: try key.subjectKey)
        var complete = record
        complete.certificate = try certificate.derRepresentation
        try await commitNewUser(complete)
        return certificate
    }

    private func prepareUser(
        _ name: String,
        pin: String,
        roles: [String]
    ) throws(TokenError) -> (UserRecord, TokenSigningKey, IdentityIssuer) {
        try checkNewUser(name)
        try PinRules.userPIN.check(pin, what: "the PIN")
        let (key, stored) = try TokenSigningKey.generate(try algorithm)
        let record = UserRecord(
            name: name,
            roles: roles,
            pin: try PinRecord(pin: pin, maxTries: token.pinMaxTries, kdf: token.kdf),
            key: stored,
            certificate: []
        )
        return (record, key, try identityIssuer())
    }

    /// A new user's name is valid and free, and the token is not locked.
    func checkNewUser(_ name: String) throws(TokenError) {
        try requireUnlocked()
        guard (1...64).contains(name.count), name.allSatisfy({ Self.nameCharacters.contains($0) }),
            !TokenKey.allCases.map(\.rawValue).contains(name), name != SoftRecordName.policySigner
        else {
            throw TokenError(
                .invalidName,
                "user name '\(name)' must be 1-64 letters, digits, '.', '_' or '-', and not a token key's name"
            )
        }
        guard try userRecord(name) == nil else { throw TokenError(.userExists, "user '\(name)' already exists") }
    }

    func commitNewUser(_ record: UserRecord) throws(TokenError) {
        try requireUnlocked()
        guard try userRecord(record.name) == nil else {
            throw TokenError(.userExists, "user '\(record.name)' already exists")
        }
        try commit([SoftRecordName.user(record.name): try RecordCoding.encode(record)])
    }

    /// Checks a user's PIN. The retry counter is written down (durably) BEFORE the PIN is derived
    /// and compared, and restored only after a match: a crash or kill in between costs a try and
    /// never gives one back, so an attacker cannot get free guesses by killing the daemon.
    ///
    /// The derivation (scrypt, ~0.1 s and 32 MiB) runs off the actor, on one serial queue outside
    /// Swift's cooperative pool: queued PIN checks wait for each other, never the token's other
    /// operations (quotes, measurements, status).
    public nonisolated func verifyPIN(user: String, pin: String) async throws(TokenError) -> PinVerdict {
        // One check at a time per user, as on a card: concurrent attempts must not each spend a try
        // before any restores, or a burst of right PINs would lock their owner.
        await enterPINGate(user)
        do {
            let verdict = try await checkPIN(user: user, pin: pin)
            await leavePINGate(user)
            return verdict
        } catch {
            await leavePINGate(user)
            throw error
        }
    }

    private nonisolated func checkPIN(user: String, pin: String) async throws(TokenError) -> PinVerdict {
        switch try await beginPINCheck(user: user) {
        case .verdict(let verdict):
            return verdict
        case .unknownUser(let kdf):
            // Spend the same derivation time as a real check, so timing does not tell users apart.
            _ = try await PinKDF.shared.derive(pin, salt: [UInt8](repeating: 0, count: 16), kdf: kdf)
            return .unknownUser
        case .check(let record):
            let matched = try await PinKDF.shared.matches(pin, record)
            return try await finishPINCheck(user: user, matched: matched)
        }
    }

    func enterPINGate(_ user: String) async {
        if pinGates[user] == nil {
            pinGates[user] = []
        } else {
            await withCheckedContinuation { pinGates[user]!.append($0) }
        }
    }

    func leavePINGate(_ user: String) {
        guard var waiters = pinGates[user], !waiters.isEmpty else {
            pinGates[user] = nil
            return
        }
        let next = waiters.removeFirst()
        pinGates[user] = waiters
        next.resume()
    }

    enum PINCheckStart: Sendable {
        case verdict(PinVerdict)
        case unknownUser(PinRecord.KDF)
        case check(PinRecord)
    }

    /// Step 1, on the actor: refuse a locked PIN, else spend a try durably.
    func beginPINCheck(user: String) throws(TokenError) -> PINCheckStart {
        try requireUnlocked()
        guard var record = try userRecord(user) else { return .unknownUser(token.kdf) }
        guard record.pin.triesLeft > 0 else { return .verdict(.locked) }
        record.pin.triesLeft -= 1
        try commit([SoftRecordName.user(user): try RecordCoding.encode(record)])
        return .check(record.pin)
    }

    /// Step 3, on the actor: a match gives every try back; a miss leaves the spent one spent.
    func finishPINCheck(user: String, matched: Bool) throws(TokenError) -> PinVerdict {
        guard var record = try userRecord(user) else { return .unknownUser }
        guard matched else {
            return record.pin.triesLeft == 0 ? .locked : .rejected(retriesLeft: record.pin.triesLeft)
        }
        record.pin.triesLeft = record.pin.maxTries
        try commit([SoftRecordName.user(user): try RecordCoding.encode(record)])
        return .accepted
    }

    public func unblockPIN(user: String, soPIN: String, newPIN: String) throws(TokenError) -> PinVerdict {
        try requireUnlocked()
        try PinRules.userPIN.check(newPIN, what: "the new PIN")
        guard var userRecord = try userRecord(user) else { throw TokenError(.unknownUser, "no user '\(user)'") }
        var so = try soRecord()
        so.triesLeft -= 1
        try commit([SoftRecordName.soPIN: try RecordCoding.encode(so)])
        guard try so.matches(soPIN) else {
            return so.triesLeft == 0 ? .locked : .rejected(retriesLeft: so.triesLeft)
        }
        so.triesLeft = so.maxTries
        userRecord.pin = try PinRecord(pin: newPIN, maxTries: userRecord.pin.maxTries, kdf: token.kdf)
        try commit([
            SoftRecordName.soPIN: try RecordCoding.encode(so),
            SoftRecordName.user(user): try RecordCoding.encode(userRecord),
        ])
        return .accepted
    }

    public func pinStatus(user: String) throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        guard let record = try userRecord(user) else { throw TokenError(.unknownUser, "no user '\(user)'") }
        return (record.pin.triesLeft, record.pin.maxTries)
    }

    public func soPINStatus() throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        let so = try soRecord()
        return (so.triesLeft, so.maxTries)
    }

    /// The users, by name.
    public func userNames() -> [String] {
        store.records.keys.filter { $0.hasPrefix("user.") }.map { String($0.dropFirst(5)) }.sorted()
    }

    public func roles(of user: String) throws(TokenError) -> [String] {
        guard let record = try userRecord(user) else { throw TokenError(.unknownUser, "no user '\(user)'") }
        return record.roles
    }

    /// A locked SO PIN locks the token for good: no PIN can be checked or unblocked and no user
    /// added. Measurement and quotes go on. Recovery is re-initialisation (a new state directory).
    func requireUnlocked() throws(TokenError) {
        guard try soRecord().triesLeft > 0 else {
            throw TokenError(
                .tokenLocked,
                "the SO PIN is locked, so the token is locked for good; re-initialise it (see docs/operations.md, 'Recovering a locked token')"
            )
        }
    }

    func soRecord() throws(TokenError) -> PinRecord {
        try RecordCoding.decode(PinRecord.self, store[SoftRecordName.soPIN], name: SoftRecordName.soPIN)
    }

    func userRecord(_ name: String) throws(TokenError) -> UserRecord? {
        let key = SoftRecordName.user(name)
        guard store[key] != nil else { return nil }
        return try RecordCoding.decode(UserRecord.self, store[key], name: key)
    }
}
