import UkeyPIV
import Crypto

/// PIN, PUK and management key: VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, the 9B
/// challenge-responses of GENERAL AUTHENTICATE, and Yubico's SET MANAGEMENT KEY.
extension PIVCard {
    enum Secret: UInt8 {
        case pin = 0x80
        case puk = 0x81
    }

    func verify(_ command: CommandAPDU) -> ([UInt8], StatusWord) {
        guard let secret = Secret(rawValue: command.p2) else { return ([], .referenceNotFound) }
        switch (command.p1, command.data.isEmpty) {
        case (0xFF, true):
            // Reset the security status (SP 800-73-4 part 2, 3.2.1).
            if secret == .pin { pinVerified = false }
            return ([], .ok)
        case (0x00, true):
            // An empty VERIFY asks for the state: verified, or the tries left.
            if secret == .pin && pinVerified { return ([], .ok) }
            return ([], triesStatus(secret))
        case (0x00, false):
            let status = check(secret, command.data)
            if secret == .pin { pinVerified = status == .ok }
            return ([], status)
        default:
            return ([], .incorrectP1P2)
        }
    }

    func changeReferenceData(_ command: CommandAPDU) -> ([UInt8], StatusWord) {
        guard command.p1 == 0x00, let secret = Secret(rawValue: command.p2) else { return ([], .incorrectP1P2) }
        guard command.data.count == 16 else { return ([], .wrongLength) }
        guard let new = Self.acceptable(Array(command.data[8...]), secret) else { return ([], .wrongData) }
        let status = check(secret, Array(command.data.prefix(8)))
        guard status == .ok else { return ([], status) }
        var next = state
        if secret == .pin { next.pin = new } else { next.puk = new }
        return commit(next) ? ([], .ok) : ([], .memoryFailure)
    }

    /// The PUK unblocks the PIN and sets a new one.
    func resetRetryCounter(_ command: CommandAPDU) -> ([UInt8], StatusWord) {
        guard command.p1 == 0x00, command.p2 == Secret.pin.rawValue else { return ([], .incorrectP1P2) }
        guard command.data.count == 16 else { return ([], .wrongLength) }
        guard let new = Self.acceptable(Array(command.data[8...]), .pin) else { return ([], .wrongData) }
        let status = check(.puk, Array(command.data.prefix(8)))
        guard status == .ok else { return ([], status) }
        var next = state
        next.pin = new
        next.pinTriesLeft = PIVCardState.maxTries
        pinVerified = false
        return commit(next) ? ([], .ok) : ([], .memoryFailure)
    }

    /// Compares a PIN or PUK, spending the try on disk first and giving it back only on a match.
    private func check(_ secret: Secret, _ offered: [UInt8]) -> StatusWord {
        guard offered.count == 8 else { return .wrongLength }
        let left = secret == .pin ? state.pinTriesLeft : state.pukTriesLeft
        guard left > 0 else { return .authenticationBlocked }
        var spent = state
        if secret == .pin { spent.pinTriesLeft -= 1 } else { spent.pukTriesLeft -= 1 }
        guard commit(spent) else { return .memoryFailure }
        let expected = secret == .pin ? state.pin : state.puk
        guard Self.constantTimeEqual(offered, expected) else {
            return triesStatus(secret)
        }
        var restored = state
        if secret == .pin {
            restored.pinTriesLeft = PIVCardState.maxTries
        } else {
            restored.pukTriesLeft = PIVCardState.maxTries
        }
        return commit(restored) ? .ok : .memoryFailure
    }

    private func triesStatus(_ secret: Secret) -> StatusWord {
        let left = secret == .pin ? state.pinTriesLeft : state.pukTriesLeft
        return left == 0 ? .authenticationBlocked : .triesLeft(left)
    }

    /// A new PIN is 6-8 characters; a PUK is 8 bytes with no padding inside.
    private static func acceptable(_ padded: [UInt8], _ secret: Secret) -> [UInt8]? {
        let characters = Array(padded.prefix { $0 != 0xFF })
        guard padded[characters.count...].allSatisfy({ $0 == 0xFF }) else { return nil }
        switch secret {
        case .pin:
            return (6...8).contains(characters.count) && characters.allSatisfy({ (0x20...0x7E).contains($0) })
                ? padded : nil
        case .puk: return characters.count >= 6 ? padded : nil
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    // MARK: the management key (9B)

    /// GENERAL AUTHENTICATE with key 9B: mutual authentication (witness, then challenge), the
    /// card authenticating the client (challenge, then response), or, with no algorithm, the
    /// random challenge OpenSC uses as its random source.
    func managementAuthenticate(_ command: CommandAPDU, _ template: [TLV.Element]) -> ([UInt8], StatusWord) {
        let algorithm = state.managementKeyAlgorithm
        let witness = template.value(0x80)
        let challenge = template.value(0x81)
        let response = template.value(0x82)
        guard command.p1 == algorithm.rawValue else {
            // OpenSC's random source: 7C { 81 00 } with P1 00.
            if command.p1 == 0x00, challenge == [] { return (dynamicTemplate(0x81, random(8)), .ok) }
            return ([], .incorrectP1P2)
        }
        let block = algorithm.blockLength
        managementAuthenticated = false
        switch (witness, challenge, response) {
        case ([]?, nil, nil):
            // Step 1 of mutual authentication: the card's witness, encrypted.
            let plain = random(block)
            guard let encrypted = encrypt(plain) else { return ([], .unknown) }
            pendingWitness = plain
            pendingChallenge = nil
            return (dynamicTemplate(0x80, encrypted), .ok)
        case (let offered?, let hostChallenge?, let request)
        where offered.count == block && hostChallenge.count == block && (request ?? []).isEmpty:
            // Step 2: the client decrypted the witness; the card answers the client's challenge.
            defer { pendingWitness = nil }
            guard let expected = pendingWitness, Self.constantTimeEqual(offered, expected) else {
                return ([], .securityNotSatisfied)
            }
            guard let encrypted = encrypt(hostChallenge) else { return ([], .unknown) }
            managementAuthenticated = true
            return (dynamicTemplate(0x82, encrypted), .ok)
        case (nil, []?, nil):
            // The card authenticates the client: a challenge for it to encrypt.
            let plain = random(block)
            pendingChallenge = plain
            pendingWitness = nil
            return (dynamicTemplate(0x81, plain), .ok)
        case (nil, nil, let answer?) where answer.count == block:
            defer { pendingChallenge = nil }
            guard let plain = pendingChallenge, let expected = encrypt(plain), Self.constantTimeEqual(answer, expected)
            else {
                return ([], .securityNotSatisfied)
            }
            managementAuthenticated = true
            return ([], .ok)
        default:
            pendingWitness = nil
            pendingChallenge = nil
            return ([], .wrongData)
        }
    }

    /// Yubico's SET MANAGEMENT KEY (INS FF, P1 FF, P2 FF or FE): `algorithm 9B length key`,
    /// allowed only after the current management key authenticated.
    func setManagementKey(_ command: CommandAPDU) -> ([UInt8], StatusWord) {
        guard command.p1 == 0xFF, command.p2 == 0xFF || command.p2 == 0xFE else { return ([], .incorrectP1P2) }
        guard managementAuthenticated else { return ([], .securityNotSatisfied) }
        let data = command.data
        guard data.count >= 3, let algorithm = ManagementKeyAlgorithm(rawValue: data[0]), data[1] == 0x9B,
            Int(data[2]) == algorithm.keyLength, data.count == 3 + algorithm.keyLength
        else { return ([], .wrongData) }
        var next = state
        next.managementKeyAlgorithm = algorithm
        next.managementKey = Array(data[3...])
        return commit(next) ? ([], .ok) : ([], .memoryFailure)
    }

    private func encrypt(_ block: [UInt8]) -> [UInt8]? {
        try? ManagementKeyCipher.encrypt(block, key: state.managementKey, algorithm: state.managementKeyAlgorithm)
    }

    func random(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// `7C { tag value }`, the dynamic authentication template every answer is wrapped in.
    func dynamicTemplate(_ tag: Int, _ value: [UInt8]) -> [UInt8] {
        TLV.encode(0x7C, TLV.encode(tag, value))
    }
}
