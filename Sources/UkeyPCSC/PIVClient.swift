import Crypto
import UkeyPIV

/// PIV operations on a `SmartCard` (NIST SP 800-73-4 part 2), each one a transaction that selects
/// the PIV application first: other programs share the reader and may have selected another
/// application or reset the card in between.
public struct PIVClient: Sendable {
    public let card: SmartCard

    public init(card: SmartCard) {
        self.card = card
    }

    /// The answer to a PIN or PUK.
    public enum PINResult: Sendable, Hashable {
        case accepted
        case wrong(triesLeft: Int)
        case blocked
    }

    static let aid: [UInt8] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00]

    /// Runs `body` in a transaction, after SELECT of the PIV application.
    public func session<T: Sendable>(
        _ body: @Sendable (isolated SmartCard) throws(CardError) -> T
    ) async throws(CardError) -> T {
        try await card.transaction { card throws(CardError) -> T in
            try Self.select(card)
            return try body(card)
        }
    }

    /// The same for a caller that cannot await (the sealed store's key protector, a provider's
    /// `open`): it waits on the card's own thread.
    public func blockingSession<T: Sendable>(
        _ body: @Sendable (isolated SmartCard) throws(CardError) -> T
    ) throws(CardError) -> T {
        try card.blocking { card throws(CardError) -> T in
            try card.transaction { card throws(CardError) -> T in
                try Self.select(card)
                return try body(card)
            }
        }
    }

    static func select(_ card: isolated SmartCard) throws(CardError) {
        let (_, status) = try card.send(CommandAPDU(cla: 0, ins: 0xA4, p1: 0x04, p2: 0x00, data: Self.aid, le: 256))
        guard status == 0x9000 else {
            throw CardError(
                .refused(status),
                "the card in \(card.readerName ?? "the reader") has no PIV application (SELECT: \(hex(status)))"
            )
        }
    }

    // MARK: PIN and PUK

    /// VERIFY of the PIN (P2 80) or PUK (81). Nil: only ask how many tries are left.
    public func verify(_ secret: String?, puk: Bool = false) async throws(CardError) -> PINResult {
        let data = try secret.map { (s: String) throws(CardError) -> [UInt8] in try Self.padded(s) } ?? []
        return try await session { card throws(CardError) -> PINResult in
            try Self.pinResult(
                card.send(CommandAPDU(cla: 0, ins: 0x20, p1: 0, p2: puk ? 0x81 : 0x80, data: data)).status,
                "VERIFY"
            )
        }
    }

    /// CHANGE REFERENCE DATA of the PIN (or the PUK).
    public func change(_ old: String, to new: String, puk: Bool = false) async throws(CardError) -> PINResult {
        let data = try Self.padded(old) + Self.padded(new)
        return try await session { card throws(CardError) -> PINResult in
            try Self.pinResult(
                card.send(CommandAPDU(cla: 0, ins: 0x24, p1: 0, p2: puk ? 0x81 : 0x80, data: data)).status,
                "CHANGE REFERENCE DATA"
            )
        }
    }

    /// RESET RETRY COUNTER: the PUK unblocks the PIN and sets a new one. The result is the PUK's.
    public func unblock(puk: String, newPIN: String) async throws(CardError) -> PINResult {
        let data = try Self.padded(puk) + Self.padded(newPIN)
        return try await session { card throws(CardError) -> PINResult in
            try Self.pinResult(
                card.send(CommandAPDU(cla: 0, ins: 0x2C, p1: 0, p2: 0x80, data: data)).status,
                "RESET RETRY COUNTER"
            )
        }
    }

    static func pinResult(_ status: UInt16, _ command: String) throws(CardError) -> PINResult {
        switch status {
        case 0x9000: return .accepted
        case 0x6983: return .blocked
        case 0x63C0...0x63CF: return .wrong(triesLeft: Int(status & 0x0F))
        default: throw CardError(.refused(status), "\(command): the card answered \(hex(status))")
        }
    }

    static func padded(_ secret: String) throws(CardError) -> [UInt8] {
        let bytes = Array(secret.utf8)
        guard (1...8).contains(bytes.count) else {
            throw CardError(.refused(0x6A80), "a PIV PIN or PUK is 1-8 characters")
        }
        return bytes + Array(repeating: 0xFF, count: 8 - bytes.count)
    }

    // MARK: keys

    /// Signs a hash (at most 32 bytes) with a slot's P-256 key, after VERIFY with `pin` in the same
    /// transaction (the signature slot wants it before every signature). Returns DER.
    public func sign(_ hash: [UInt8], slot: PIVSlot, pin: String?) async throws(CardError) -> [UInt8] {
        let request = TLV.encode(0x7C, TLV.encode(0x82, []) + TLV.encode(0x81, hash))
        return try await authenticated(slot: slot, pin: pin, request: request, "signing with \(slot)")
    }

    /// ECDH of a slot's key with `point` (an X9.63 P-256 point): the shared x coordinate.
    public func agree(with point: [UInt8], slot: PIVSlot, pin: String?) async throws(CardError) -> [UInt8] {
        let request = TLV.encode(0x7C, TLV.encode(0x82, []) + TLV.encode(0x85, point))
        return try await authenticated(slot: slot, pin: pin, request: request, "key agreement with \(slot)")
    }

    private func authenticated(
        slot: PIVSlot,
        pin: String?,
        request: [UInt8],
        _ what: String
    ) async throws(CardError) -> [UInt8] {
        let pinBytes = try pin.map { (p: String) throws(CardError) -> [UInt8] in try Self.padded(p) }
        return try await session { card throws(CardError) -> [UInt8] in
            try Self.generalAuthenticate(card, slot: slot, pin: pinBytes, request: request, what)
        }
    }

    /// A signature as `sign`, for a caller that cannot await (swift-certificates' CSR builder).
    public func signBlocking(_ hash: [UInt8], slot: PIVSlot, pin: String?) throws(CardError) -> [UInt8] {
        let request = TLV.encode(0x7C, TLV.encode(0x82, []) + TLV.encode(0x81, hash))
        let pinBytes = try pin.map { (p: String) throws(CardError) -> [UInt8] in try Self.padded(p) }
        return try blockingSession { card throws(CardError) -> [UInt8] in
            try Self.generalAuthenticate(card, slot: slot, pin: pinBytes, request: request, "signing with \(slot)")
        }
    }

    /// Replaces the card management key (Yubico's SET MANAGEMENT KEY, which ukey-vcard also
    /// implements), authenticated by the current one.
    public func setManagementKey(_ new: ManagementKey, current: ManagementKey) async throws(CardError) {
        guard new.bytes.count == new.algorithm.keyLength else {
            throw CardError(.refused(0x6A80), "a \(new.algorithm.name) key is \(new.algorithm.keyLength) bytes")
        }
        try await session { card throws(CardError) in
            try Self.authenticate(card, current)
            let data = [new.algorithm.rawValue, 0x9B, UInt8(new.bytes.count)] + new.bytes
            let (_, status) = try card.send(CommandAPDU(cla: 0, ins: 0xFF, p1: 0xFF, p2: 0xFF, data: data))
            guard status == 0x9000 else {
                throw CardError(.refused(status), "the card refused the new management key (\(hex(status)))")
            }
        }
    }

    /// ECDH as `agree`, for a caller that cannot await.
    public func agreeBlocking(with point: [UInt8], slot: PIVSlot, pin: String?) throws(CardError) -> [UInt8] {
        let request = TLV.encode(0x7C, TLV.encode(0x82, []) + TLV.encode(0x85, point))
        let pinBytes = try pin.map { (p: String) throws(CardError) -> [UInt8] in try Self.padded(p) }
        return try blockingSession { card throws(CardError) -> [UInt8] in
            try Self.generalAuthenticate(
                card,
                slot: slot,
                pin: pinBytes,
                request: request,
                "key agreement with \(slot)"
            )
        }
    }

    /// GENERAL AUTHENTICATE with a slot's key, after VERIFY with the PIN if one is given.
    static func generalAuthenticate(
        _ card: isolated SmartCard,
        slot: PIVSlot,
        pin pinBytes: [UInt8]?,
        request: [UInt8],
        _ what: String
    ) throws(CardError) -> [UInt8] {
        if let pinBytes {
            let result = try Self.pinResult(
                card.send(CommandAPDU(cla: 0, ins: 0x20, p1: 0, p2: 0x80, data: pinBytes)).status,
                "VERIFY"
            )
            guard result == .accepted else {
                throw CardError(.refused(0x6982), "\(what): the card's PIN was refused (\(result))")
            }
        }
        let (data, status) = try card.send(
            CommandAPDU(cla: 0, ins: 0x87, p1: 0x11, p2: slot.rawValue, data: request, le: 256)
        )
        guard status == 0x9000 else { throw CardError(.refused(status), "\(what): the card answered \(hex(status))") }
        guard let outer = try? TLV.parse(data), outer.first?.tag == 0x7C,
            let value = (try? TLV.parse(outer[0].value))?.value(0x82)
        else {
            throw CardError(.malformed, "\(what): the card's answer is not a 7C template with 82")
        }
        return value
    }

    /// GENERATE ASYMMETRIC KEY PAIR (P-256) in `slot`, authenticated by the management key.
    public func generate(slot: PIVSlot, managementKey: ManagementKey) async throws(CardError) -> P256.Signing.PublicKey
    {
        try await session { card throws(CardError) -> P256.Signing.PublicKey in
            try Self.authenticate(card, managementKey)
            let (data, status) = try card.send(
                CommandAPDU(cla: 0, ins: 0x47, p1: 0, p2: slot.rawValue, data: [0xAC, 0x03, 0x80, 0x01, 0x11], le: 256)
            )
            guard status == 0x9000 else {
                throw CardError(.refused(status), "generating a key in \(slot): the card answered \(hex(status))")
            }
            guard let outer = try? TLV.parse(data), outer.first?.tag == 0x7F49,
                let point = (try? TLV.parse(outer[0].value))?.value(0x86),
                let key = try? P256.Signing.PublicKey(x963Representation: point)
            else { throw CardError(.malformed, "the card's new key in \(slot) is not a P-256 point") }
            return key
        }
    }

    /// The certificate in a slot (DER), or nil if the slot has none.
    public func certificate(slot: PIVSlot) async throws(CardError) -> [UInt8]? {
        try await session { card throws(CardError) -> [UInt8]? in try Self.certificate(card, slot: slot) }
    }

    /// The certificate in a slot, for a caller that cannot await.
    public func certificateBlocking(slot: PIVSlot) throws(CardError) -> [UInt8]? {
        try blockingSession { card throws(CardError) -> [UInt8]? in try Self.certificate(card, slot: slot) }
    }

    static func certificate(_ card: isolated SmartCard, slot: PIVSlot) throws(CardError) -> [UInt8]? {
        let object = slot.certificateObject
        let (data, status) = try card.send(
            CommandAPDU(cla: 0, ins: 0xCB, p1: 0x3F, p2: 0xFF, data: [0x5C, 0x03] + Self.tagBytes(object), le: 256)
        )
        if status == 0x6A82 { return nil }
        guard status == 0x9000 else {
            throw CardError(.refused(status), "reading the certificate of \(slot): \(hex(status))")
        }
        guard let outer = try? TLV.parse(data), outer.first?.tag == 0x53,
            let certificate = (try? TLV.parse(outer[0].value))?.value(0x70)
        else {
            throw CardError(.malformed, "the certificate object of \(slot) is not a 53 { 70 ... } container")
        }
        return certificate
    }

    /// Writes a slot's certificate (DER), authenticated by the management key.
    public func putCertificate(_ der: [UInt8], slot: PIVSlot, managementKey: ManagementKey) async throws(CardError) {
        let object = slot.certificateObject
        let data =
            TLV.encode(0x5C, Self.tagBytes(object))
            + TLV.encode(0x53, TLV.encode(0x70, der) + TLV.encode(0x71, [0x00]) + TLV.encode(0xFE, []))
        try await session { card throws(CardError) in
            try Self.authenticate(card, managementKey)
            let (_, status) = try card.send(CommandAPDU(cla: 0, ins: 0xDB, p1: 0x3F, p2: 0xFF, data: data))
            guard status == 0x9000 else {
                throw CardError(.refused(status), "writing the certificate of \(slot): \(hex(status))")
            }
        }
    }

    /// Random bytes from the card: challenges of its management key (8 or 16 bytes each).
    public func random(count: Int, managementKey: ManagementKeyAlgorithm) async throws(CardError) -> [UInt8] {
        try await session { card throws(CardError) -> [UInt8] in
            var bytes: [UInt8] = []
            while bytes.count < count {
                let (data, status) = try card.send(
                    CommandAPDU(
                        cla: 0,
                        ins: 0x87,
                        p1: managementKey.rawValue,
                        p2: 0x9B,
                        data: [0x7C, 0x02, 0x81, 0x00],
                        le: 256
                    )
                )
                guard status == 0x9000, let outer = try? TLV.parse(data),
                    let challenge = (try? TLV.parse(outer.first?.value ?? []))?.value(0x81),
                    !challenge.isEmpty
                else { throw CardError(.refused(status), "the card gave no challenge (\(hex(status)))") }
                bytes += challenge
            }
            return Array(bytes.prefix(count))
        }
    }

    /// GET SERIAL (Yubico's INS F8; ukey-vcard answers it too), or nil for a card without it.
    public func serial() async throws(CardError) -> UInt32? {
        try await session { card throws(CardError) -> UInt32? in try Self.serial(card) }
    }

    /// The serial, for a caller that cannot await.
    public func serialBlocking() throws(CardError) -> UInt32? {
        try blockingSession { card throws(CardError) -> UInt32? in try Self.serial(card) }
    }

    static func serial(_ card: isolated SmartCard) throws(CardError) -> UInt32? {
        let (data, status) = try card.send(CommandAPDU(cla: 0, ins: 0xF8, p1: 0, p2: 0, le: 256))
        guard status == 0x9000, data.count == 4 else { return nil }
        return data.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The card authenticates us: its challenge, our encryption of it with the management key.
    static func authenticate(_ card: isolated SmartCard, _ key: ManagementKey) throws(CardError) {
        let (data, status) = try card.send(
            CommandAPDU(
                cla: 0,
                ins: 0x87,
                p1: key.algorithm.rawValue,
                p2: 0x9B,
                data: [0x7C, 0x02, 0x81, 0x00],
                le: 256
            )
        )
        guard status == 0x9000, let outer = try? TLV.parse(data),
            let challenge = (try? TLV.parse(outer.first?.value ?? []))?.value(0x81)
        else {
            throw CardError(.refused(status), "the card gave no management-key challenge (\(hex(status)))")
        }
        let answer: [UInt8]
        do {
            answer = try ManagementKeyCipher.encrypt(challenge, key: key.bytes, algorithm: key.algorithm)
        } catch {
            throw CardError(.malformed, "the management key: \(error)")
        }
        let (_, result) = try card.send(
            CommandAPDU(
                cla: 0,
                ins: 0x87,
                p1: key.algorithm.rawValue,
                p2: 0x9B,
                data: TLV.encode(0x7C, TLV.encode(0x82, answer))
            )
        )
        guard result == 0x9000 else {
            throw CardError(.refused(result), "the card refused the management key (\(hex(result)))")
        }
    }

    static func tagBytes(_ tag: Int) -> [UInt8] {
        [UInt8(tag >> 16 & 0xFF), UInt8(tag >> 8 & 0xFF), UInt8(tag & 0xFF)]
    }
}

/// A card management key (PIV key reference 9B) and its algorithm.
public struct ManagementKey: Sendable {
    public let algorithm: ManagementKeyAlgorithm
    public let bytes: [UInt8]

    public init(algorithm: ManagementKeyAlgorithm, bytes: [UInt8]) {
        self.algorithm = algorithm
        self.bytes = bytes
    }

    /// The factory key of PIV cards and YubiKeys (3DES 0102...08 three times): public, to be
    /// changed at enrolment.
    public static let factoryDefault = ManagementKey(
        algorithm: .tripleDES,
        bytes: Array(repeating: [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08], count: 3).flatMap { $0 }
    )
}

func hex(_ status: UInt16) -> String { String(status, radix: 16, uppercase: true) }
