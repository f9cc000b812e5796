import Crypto
import UkeyPIV
import UkeyToken
import X509

/// The users role on users' own cards: each user has a PIV card of their own, known by its
/// serial, in whichever reader it is put. `Auth.Login` proves both factors on that card: VERIFY
/// of the PIN (the card counts the tries: 63Cx gives the tries left, 6983 a locked PIN), then the
/// card's 9a key signs a fresh challenge that must verify with the key the user CA certified when
/// the user was added. The card's PUK unblocks its PIN. Names, roles and certificates stay in the
/// sealed store; no PIN does.
public struct CardUsers: UsersRole {
    let records: SoftToken
    /// The card that holds ukeyd's keys: its PUK's tries are the token's SO status.
    let binding: CardBinding
    let cards: UserCards

    public init(records: SoftToken, binding: CardBinding, cards: UserCards = UserCards()) {
        self.records = records
        self.binding = binding
        self.cards = cards
    }

    /// Adds the user whose card names them in its 9a certificate (`ukeyctl card enroll --user`):
    /// the PIN given must open that card, and the card must sign a challenge with that key; only
    /// then does the user CA certify the key and the store record the card's serial.
    public func addUser(_ name: String, pin: String, roles: [String]) async throws(TokenError) {
        _ = try await addUserReturningCertificate(name, pin: pin, roles: roles)
    }

    public func addUserReturningCertificate(
        _ name: String,
        pin: String,
        roles: [String]
    ) async throws(TokenError) -> TokenCertificate {
        let card: (serial: UInt32, publicKey: P256.Signing.PublicKey, reader: String)
        do {
            card = try await cards.find(user: name)
        } catch {
            throw CardBinding.tokenError(error)
        }
        try refuseKeysCard(card.serial, user: name)
        switch try await prove(serial: card.serial, publicKey: card.publicKey, pin: pin, user: name) {
        case .accepted: break
        case .rejected(let left):
            throw TokenError(.invalidPIN, "the PIN does not open \(name)'s card (\(left) tries left on it)")
        case .locked: throw TokenError(.invalidPIN, "\(name)'s card has its PIN blocked: unblock it with its PUK first")
        case .unknownUser: throw TokenError(.unknownUser, "no user '\(name)'")
        }
        return try await records.addCardUser(name, roles: roles, card: card.serial, publicKey: card.publicKey)
    }

    public func verifyPIN(user: String, pin: String) async throws(TokenError) -> PinVerdict {
        guard await records.userNames().contains(user) else { return .unknownUser }
        guard let card = try await records.userCard(user) else { return .locked }
        try refuseKeysCard(card.serial, user: user)
        return try await prove(serial: card.serial, publicKey: card.publicKey, pin: pin, user: user)
    }

    /// ukeyd's keys card is never a user's: its slot 9c signs quotes and audit checkpoints for
    /// whoever presents its PIN, so a user logging in with it would hold that PIN. Refused at
    /// enrolment, and at every login of a user enrolled before this rule (re-enrol them on a card
    /// of their own).
    func refuseKeysCard(_ serial: UInt32, user: String) throws(TokenError) {
        guard let keysCard = binding.serial, keysCard == serial else { return }
        throw TokenError(
            .invalidArgument,
            "card \(serial) holds ukeyd's keys (its slot 9c signs quotes and audit checkpoints for whoever has its PIN): it cannot be \(user)'s card; give \(user) a card of their own"
        )
    }

    /// PIN, then a signature by the card's 9a key over 32 fresh random bytes.
    private func prove(
        serial: UInt32,
        publicKey: P256.Signing.PublicKey,
        pin: String,
        user: String
    ) async throws(TokenError) -> PinVerdict {
        // A PIV PIN is at most 8 characters: a longer one cannot be this card's, and sending it is impossible.
        guard (1...8).contains(pin.utf8.count) else { return try await rejectedWithoutTry(serial: serial) }
        let digest = SHA256.hash(data: (0..<32).map { _ in UInt8.random(in: 0...255) })
        let challenge = Array(digest)
        let answer: PIVClient.UserCardAnswer
        do {
            answer = try await cards.onCard(serial: serial) { client throws(CardError) -> PIVClient.UserCardAnswer? in
                let answer = try await client.proveUser(serial: serial, pin: pin, challenge: challenge)
                if case .otherCard = answer { return nil }
                return answer
            }
        } catch {
            throw CardBinding.tokenError(error)
        }
        switch answer {
        case .wrong(let left): return left == 0 ? .locked : .rejected(retriesLeft: left)
        case .blocked: return .locked
        case .otherCard: throw TokenError(.unavailable, "\(user)'s card is in no reader")
        case .signed(let der):
            guard let signature = try? P256.Signing.ECDSASignature(derRepresentation: der),
                publicKey.isValidSignature(signature, for: digest)
            else {
                throw TokenError(
                    .unavailable,
                    "card \(serial) knows \(user)'s PIN but its 9a key is not the one certified for \(user): refused"
                )
            }
            return .accepted
        }
    }

    private func rejectedWithoutTry(serial: UInt32) async throws(TokenError) -> PinVerdict {
        switch try await pinOperation(
            serial: serial,
            CommandAPDU(cla: 0, ins: 0x20, p1: 0, p2: 0x80, data: []),
            "VERIFY"
        ) {
        case .accepted: return .rejected(retriesLeft: 3)
        case .wrong(let left): return left == 0 ? .locked : .rejected(retriesLeft: left)
        case .blocked: return .locked
        }
    }

    public func unblockPIN(user: String, soPIN: String, newPIN: String) async throws(TokenError) -> PinVerdict {
        guard await records.userNames().contains(user) else { throw TokenError(.unknownUser, "no user '\(user)'") }
        guard let card = try await records.userCard(user) else {
            throw TokenError(.invalidArgument, "user '\(user)' has no card")
        }
        try PinRules.userPIN.check(newPIN, what: "the new PIN")
        guard newPIN.utf8.count <= 8 else {
            throw TokenError(.invalidPIN, "the new PIN must be 6-8 characters: it goes on a PIV card")
        }
        guard (1...8).contains(soPIN.utf8.count) else {
            throw TokenError(.invalidPIN, "the card's PUK is 1-8 characters")
        }
        let data: [UInt8]
        do {
            data = try PIVClient.padded(soPIN) + PIVClient.padded(newPIN)
        } catch {
            throw CardBinding.tokenError(error)
        }
        switch try await pinOperation(
            serial: card.serial,
            CommandAPDU(cla: 0, ins: 0x2C, p1: 0, p2: 0x80, data: data),
            "RESET RETRY COUNTER"
        ) {
        case .accepted: return .accepted
        case .wrong(let left): return left == 0 ? .locked : .rejected(retriesLeft: left)
        case .blocked: return .locked
        }
    }

    public func pinStatus(user: String) async throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        guard await records.userNames().contains(user) else { throw TokenError(.unknownUser, "no user '\(user)'") }
        guard let card = try await records.userCard(user) else { return (0, 0) }
        switch try await pinOperation(
            serial: card.serial,
            CommandAPDU(cla: 0, ins: 0x20, p1: 0, p2: 0x80, data: []),
            "VERIFY"
        ) {
        case .accepted: return (3, 3)
        case .wrong(let left): return (left, 3)
        case .blocked: return (0, 3)
        }
    }

    public func soPINStatus() async throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        let verdict: PIVClient.PINResult
        do {
            verdict = try await binding.client.verify(nil, puk: true)
        } catch {
            throw CardBinding.tokenError(error)
        }
        switch verdict {
        case .accepted: return (3, 3)
        case .wrong(let left): return (left, 3)
        case .blocked: return (0, 3)
        }
    }

    private func pinOperation(
        serial: UInt32,
        _ command: CommandAPDU,
        _ what: String
    ) async throws(TokenError) -> PIVClient.PINResult {
        do {
            return try await cards.onCard(serial: serial) { client throws(CardError) -> PIVClient.PINResult? in
                try await client.pinOperation(serial: serial, command, what)
            }
        } catch {
            throw CardBinding.tokenError(error)
        }
    }
}
