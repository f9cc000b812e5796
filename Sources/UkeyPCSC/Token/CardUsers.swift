import UkeyToken

/// The users role on the card's own PIN and PUK: `Auth.Login` verifies the PIN on the card (its
/// retry counter is the card's: 63Cx gives the tries left, 6983 a locked PIN), and the PUK
/// unblocks it. Users' names and roles stay in the sealed store.
public struct CardUsers: UsersRole {
    let records: SoftToken
    let binding: CardBinding

    public init(records: SoftToken, binding: CardBinding) {
        self.records = records
        self.binding = binding
    }

    /// Records the user; the PIN given is not kept: the card's PIN is the one that counts.
    public func addUser(_ name: String, pin: String, roles: [String]) async throws(TokenError) {
        try await records.addUser(name, pin: pin, roles: roles)
    }

    public func verifyPIN(user: String, pin: String) async throws(TokenError) -> PinVerdict {
        guard await records.userNames().contains(user) else { return .unknownUser }
        return try await verdict { () async throws(CardError) in try await binding.client.verify(pin) }
    }

    public func unblockPIN(user: String, soPIN: String, newPIN: String) async throws(TokenError) -> PinVerdict {
        guard await records.userNames().contains(user) else { throw TokenError(.unknownUser, "no user '\(user)'") }
        try PinRules.userPIN.check(newPIN, what: "the new PIN")
        return try await verdict { () async throws(CardError) in try await binding.client.unblock(puk: soPIN, newPIN: newPIN) }
    }

    public func pinStatus(user: String) async throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        guard await records.userNames().contains(user) else { throw TokenError(.unknownUser, "no user '\(user)'") }
        return try await tries(puk: false)
    }

    public func soPINStatus() async throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        try await tries(puk: true)
    }

    private func tries(puk: Bool) async throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        let verdict = try await verdict { () async throws(CardError) in try await binding.client.verify(nil, puk: puk) }
        switch verdict {
        case .accepted: return (3, 3)
        case .rejected(let left): return (left, 3)
        case .locked, .unknownUser: return (0, 3)
        }
    }

    private func verdict(_ body: () async throws(CardError) -> PIVClient.PINResult) async throws(TokenError) -> PinVerdict {
        do {
            switch try await body() {
            case .accepted: return .accepted
            case .wrong(let left): return .rejected(retriesLeft: left)
            case .blocked: return .locked
            }
        } catch {
            throw CardBinding.tokenError(error)
        }
    }
}
