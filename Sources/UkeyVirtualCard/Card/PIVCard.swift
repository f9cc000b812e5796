import UkeyPIV

/// The Ukey as a PIV card (the subset of NIST SP 800-73-4 that OpenSC and yubico-piv-tool use):
/// one card, answering one APDU at a time, the way a reader delivers them.
///
/// Persistent state (`PIVCardState`) changes only through `commit`, which writes it durably
/// first: a PIN try is spent on disk before the PIN is compared, and a key is kept only once it
/// is stored. Session state (a verified PIN, an authenticated management key, a response still
/// being read, a command still being chained) is lost at power off or reset, as on a card.
public final class PIVCard {
    /// Writes the state durably; a failure leaves the card as it was and answers 6581.
    public typealias Persist = (PIVCardState) throws -> Void

    public private(set) var state: PIVCardState
    let persist: Persist

    package var pinVerified = false
    package var managementAuthenticated = false
    /// The witness of a mutual authentication in progress, or the challenge of a single one.
    var pendingWitness: [UInt8]?
    var pendingChallenge: [UInt8]?
    /// What a response longer than 256 bytes (or than Le) still holds, for GET RESPONSE.
    var pendingResponse: [UInt8] = []
    /// A chained command's data so far, with its INS, P1, P2.
    var chain: (ins: UInt8, p1: UInt8, p2: UInt8, data: [UInt8])?

    /// The most a chained command may gather: a certificate container is far smaller.
    public static let maxChainedLength = 16 * 1024
    /// The most one response carries; the rest waits for GET RESPONSE (`61xx`). A longer answer
    /// made pcsc-lite fail with SCARD_E_INSUFFICIENT_BUFFER and the certificates vanish.
    static let maxResponseChunk = 256

    /// A T=1 ATR ("ukey" in the historical bytes) that looks like no card OpenSC or
    /// yubico-piv-tool special-cases: not a YubiKey, not a PIVKey, not contactless.
    public static let atr: [UInt8] = [0x3B, 0x85, 0x01, 0x80, 0x75, 0x6B, 0x65, 0x79, 0x06]

    public init(state: PIVCardState, persist: @escaping Persist) {
        self.state = state
        self.persist = persist
    }

    /// Power off, power on or reset: every session right and pending exchange is dropped.
    public func reset() {
        pinVerified = false
        managementAuthenticated = false
        pendingWitness = nil
        pendingChallenge = nil
        pendingResponse = []
        chain = nil
    }

    /// One command APDU in, one response APDU out (data, then SW1 SW2).
    public func respond(to bytes: [UInt8]) -> [UInt8] {
        let command: CommandAPDU
        do {
            command = try CommandAPDU(parsing: bytes)
        } catch {
            pendingResponse = []
            return StatusWord.wrongLength.bytes
        }
        if command.ins == 0xC0 { return getResponse(command) }
        // Another command abandons a response still being read (OpenSC reads the first 8 bytes
        // of an object to size it, then asks again).
        pendingResponse = []
        guard command.cla & ~0x10 == 0x00 else { return StatusWord.claNotSupported.bytes }
        guard var complete = gather(command) else { return StatusWord.ok.bytes }
        if complete.data.count > Self.maxChainedLength { return StatusWord.wrongLength.bytes }
        complete.cla = 0
        let (data, status) = dispatch(complete)
        return send(data, status: status, le: command.le)
    }

    /// Command chaining: a chained part is kept and acknowledged; the last part gets the whole.
    private func gather(_ command: CommandAPDU) -> CommandAPDU? {
        if let open = chain, open.ins != command.ins || open.p1 != command.p1 || open.p2 != command.p2 {
            chain = nil  // a different command ends the chain
        }
        let gathered = (chain?.data ?? []) + command.data
        if command.chained {
            chain = (command.ins, command.p1, command.p2, Array(gathered.prefix(Self.maxChainedLength + 1)))
            return nil
        }
        chain = nil
        var complete = command
        complete.data = gathered
        return complete
    }

    private func dispatch(_ command: CommandAPDU) -> ([UInt8], StatusWord) {
        switch command.ins {
        case 0xA4: select(command)
        case 0xCB: getData(command)
        case 0x20: verify(command)
        case 0x24: changeReferenceData(command)
        case 0x2C: resetRetryCounter(command)
        case 0x87: generalAuthenticate(command)
        case 0x47: generateKeyPair(command)
        case 0xDB: putData(command)
        case 0xFF: setManagementKey(command)
        case 0xFD: ([4, 3, 7], .ok)  // GET VERSION: a firmware with ECC P-256 and without the 5.x metadata commands
        case 0xF8: (withUnsafeBytes(of: state.serial.bigEndian, Array.init), .ok)  // GET SERIAL
        default: ([], .insNotSupported)
        }
    }

    /// Up to Le (absent: 256) bytes now, and `61xx` if more wait for GET RESPONSE.
    private func send(_ data: [UInt8], status: StatusWord, le: Int?) -> [UInt8] {
        guard status == .ok else { return data + status.bytes }
        let limit = min(le ?? Self.maxResponseChunk, Self.maxResponseChunk)
        guard data.count > limit else { return data + status.bytes }
        pendingResponse = Array(data[limit...])
        return Array(data.prefix(limit)) + moreAvailable()
    }

    private func getResponse(_ command: CommandAPDU) -> [UInt8] {
        guard !pendingResponse.isEmpty else { return StatusWord.conditionsNotSatisfied.bytes }
        let rest = pendingResponse
        pendingResponse = []
        return send(rest, status: .ok, le: command.le)
    }

    private func moreAvailable() -> [UInt8] {
        [0x61, pendingResponse.count > 0xFF ? 0x00 : UInt8(pendingResponse.count)]
    }

    private func select(_ command: CommandAPDU) -> ([UInt8], StatusWord) {
        guard command.p1 == 0x04 else { return ([], .incorrectP1P2) }
        // By prefix: yubico-piv-tool selects the 5-byte RID, OpenSC the 9-byte AID.
        guard command.data.count >= 5, command.data.count <= PIVObjects.aid.count,
            Array(PIVObjects.aid.prefix(command.data.count)) == command.data
        else { return ([], .notFound) }
        return (PIVObjects.applicationPropertyTemplate, .ok)
    }

    /// Writes `next` durably and adopts it; on failure nothing changes.
    func commit(_ next: PIVCardState) -> Bool {
        do {
            try persist(next)
        } catch {
            return false
        }
        state = next
        return true
    }
}
