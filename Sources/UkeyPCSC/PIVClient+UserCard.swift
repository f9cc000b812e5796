import Crypto
import UkeyPIV

extension PIVClient {
    /// What a user's card answered a login.
    public enum UserCardAnswer: Sendable, Hashable {
        /// The PIN was right and the card's 9a key signed the challenge (DER).
        case signed([UInt8])
        case wrong(triesLeft: Int)
        case blocked
        /// The reader holds another card (its serial): nothing was sent to it but SELECT and GET SERIAL.
        case otherCard(UInt32?)
    }

    /// A user's login on their own card, in one transaction so that no other client's APDU and
    /// no card swap falls between the steps: the card must be `serial`; then VERIFY of the PIN;
    /// then the card's 9a key signs `challenge` (a SHA-256 hash), which proves the card is the
    /// one whose key the user CA certified, not merely one that knows the PIN.
    public func proveUser(
        serial expected: UInt32,
        pin: String,
        challenge: [UInt8]
    ) async throws(CardError) -> UserCardAnswer {
        let pinBytes = try Self.padded(pin)
        let request = TLV.encode(0x7C, TLV.encode(0x82, []) + TLV.encode(0x81, challenge))
        return try await session { card throws(CardError) -> UserCardAnswer in
            let serial = try Self.serial(card)
            guard serial == expected else { return .otherCard(serial) }
            switch try Self.pinResult(
                card.send(CommandAPDU(cla: 0, ins: 0x20, p1: 0, p2: 0x80, data: pinBytes)).status,
                "VERIFY"
            ) {
            case .wrong(let left): return .wrong(triesLeft: left)
            case .blocked: return .blocked
            case .accepted:
                return .signed(
                    try Self.generalAuthenticate(
                        card,
                        slot: .authentication,
                        pin: nil,
                        request: request,
                        "signing the login challenge"
                    )
                )
            }
        }
    }

    /// Signs `hash` with the 9a key of the card `serial`, on the PIN a login verified (PIV's 9a
    /// asks for it once per card session): nil when the reader holds another card.
    public func signWithAuthenticationKey(serial expected: UInt32, hash: [UInt8]) async throws(CardError) -> [UInt8]? {
        let request = TLV.encode(0x7C, TLV.encode(0x82, []) + TLV.encode(0x81, hash))
        return try await session { card throws(CardError) -> [UInt8]? in
            guard try Self.serial(card) == expected else { return nil }
            return try Self.generalAuthenticate(
                card,
                slot: .authentication,
                pin: nil,
                request: request,
                "signing with the user's 9a key"
            )
        }
    }

    /// The card's serial and its 9a certificate, read in one transaction.
    public func identity() async throws(CardError) -> (serial: UInt32?, authentication: [UInt8]?) {
        try await session { card throws(CardError) -> (serial: UInt32?, authentication: [UInt8]?) in
            (try Self.serial(card), try Self.certificate(card, slot: .authentication))
        }
    }

    /// A PIN operation (VERIFY, RESET RETRY COUNTER) on the card only if it is `serial`: nil when
    /// the reader holds another card.
    public func pinOperation(
        serial expected: UInt32,
        _ command: CommandAPDU,
        _ what: String
    ) async throws(CardError) -> PINResult? {
        try await session { card throws(CardError) -> PINResult? in
            guard try Self.serial(card) == expected else { return nil }
            return try Self.pinResult(card.send(command).status, what)
        }
    }
}
