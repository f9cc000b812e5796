import CPCSC
import UkeyConcurrency
import UkeyPIV
import UkeyToken

/// One PIV card through pcsc-lite: the actor owns the PC/SC context and the card handle, and runs
/// on a thread of its own (`QueueExecutor`), since every call blocks until the card answers.
///
/// A card that goes away (pulled, reset by another program, pcscd restarted) drops the handle;
/// the next operation connects again, so the card recovers when it is back. Multi-APDU work runs
/// inside `transaction`, so no other PC/SC client's APDU falls between ours.
public actor SmartCard {
    private nonisolated let executor = QueueExecutor(label: "ukey.pcsc")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// A substring of the reader's name; nil: the first reader with a PIV card in it.
    public nonisolated let readerMatch: String?
    private var context: SCARDCONTEXT = 0
    private var handle: SCARDHANDLE = 0
    public private(set) var readerName: String?
    /// APDUs exchanged since start, for `make bench` and `Admin.Status`.
    public private(set) var exchanges = 0

    /// The most one command carries before it is chained (CLA 10): vpcd and many readers carry
    /// short APDUs only.
    static let maxShortData = 255

    public init(reader: String?) {
        readerMatch = reader
    }

    deinit {
        // After the process's PC/SC use ended, pcscd lets go of what the process held when it
        // exits; a call here could meet pcsc-lite torn down.
        let (handle, context) = (handle, context)
        guard handle != 0 || context != 0, PCSCLifetime.shared.enter() else { return }
        defer { PCSCLifetime.shared.leave() }
        if handle != 0 { SCardDisconnect(handle, DWORD(SCARD_LEAVE_CARD)) }
        if context != 0 { SCardReleaseContext(context) }
    }

    /// Runs `body` on the card's thread for a caller that cannot await (the sealed store's key
    /// protector). Never call it from the card's own thread.
    public nonisolated func blocking<T: Sendable>(
        _ body: @Sendable (isolated SmartCard) throws(CardError) -> T
    ) throws(CardError) -> T {
        let result: Result<T, CardError> = executor.sync {
            self.assumeIsolated { card in Result { () throws(CardError) -> T in try body(card) } }
        }
        return try result.get()
    }

    /// Runs `body` in a PC/SC transaction: no other client's APDU falls between its APDUs. A card
    /// gone mid-way ends it with `.unavailable`; the next call connects again.
    public func transaction<T: Sendable>(
        _ body: @Sendable (isolated SmartCard) throws(CardError) -> T
    ) throws(CardError) -> T {
        guard PCSCLifetime.shared.enter() else {
            throw CardError(.unavailable, "the card is closed: ukeyd is stopping")
        }
        defer { PCSCLifetime.shared.leave() }
        try connect()
        var status = SCardBeginTransaction(handle)
        if status == PCSCCode.resetCard.rawValue || status == PCSCCode.removedCard.rawValue
            || status == PCSCCode.invalidHandle.rawValue
        {
            disconnect()
            try connect()
            status = SCardBeginTransaction(handle)
        }
        guard status == PCSCCode.success.rawValue else {
            disconnect()
            throw CardError.pcsc(status, "starting a transaction with the card")
        }
        defer { SCardEndTransaction(handle, DWORD(SCARD_LEAVE_CARD)) }
        return try body(self)
    }

    /// Sends one command: data over 255 bytes is chained, and `61xx` answers are read to the end
    /// with GET RESPONSE. Returns the data and the final status word.
    public func send(_ command: CommandAPDU) throws(CardError) -> (data: [UInt8], status: UInt16) {
        var parts = stride(from: 0, to: max(command.data.count, 1), by: Self.maxShortData).map {
            Array(command.data[$0..<min($0 + Self.maxShortData, command.data.count)])
        }
        let last = parts.removeLast()
        for part in parts {
            var chained = command
            chained.cla |= 0x10
            chained.data = part
            chained.le = nil
            let (_, status) = try exchange(chained.shortEncoding)
            guard status == 0x9000 else { return ([], status) }
        }
        var final = command
        final.data = last
        var (data, status) = try exchange(final.shortEncoding)
        var guard_ = 0
        while status >> 8 == 0x61 {
            guard_ += 1
            guard guard_ <= 256, data.count <= 65_536 else {
                throw CardError(.malformed, "the card's answer never ends")
            }
            let more = try exchange(
                CommandAPDU(cla: 0x00, ins: 0xC0, p1: 0, p2: 0, le: status & 0xFF == 0 ? 256 : Int(status & 0xFF))
                    .shortEncoding
            )
            data += more.data
            status = more.status
        }
        return (data, status)
    }

    private func exchange(_ apdu: [UInt8]) throws(CardError) -> (data: [UInt8], status: UInt16) {
        var request = SCARD_IO_REQUEST(
            dwProtocol: DWORD(SCARD_PROTOCOL_T1),
            cbPciLength: DWORD(MemoryLayout<SCARD_IO_REQUEST>.size)
        )
        var response = [UInt8](repeating: 0, count: 258)
        var length = DWORD(response.count)
        let status = SCardTransmit(handle, &request, apdu, DWORD(apdu.count), nil, &response, &length)
        exchanges += 1
        guard status == PCSCCode.success.rawValue else {
            disconnect()
            throw CardError.pcsc(status, "sending an APDU to the card")
        }
        guard length >= 2 else {
            throw CardError(.malformed, "the card answered \(length) bytes, without a status word")
        }
        let count = Int(length)
        return (Array(response[0..<(count - 2)]), UInt16(response[count - 2]) << 8 | UInt16(response[count - 1]))
    }

    private func connect() throws(CardError) {
        if handle != 0 { return }
        if context == 0 {
            var fresh: SCARDCONTEXT = 0
            let status = SCardEstablishContext(DWORD(SCARD_SCOPE_SYSTEM), nil, nil, &fresh)
            guard status == PCSCCode.success.rawValue else { throw CardError.pcsc(status, "connecting to pcscd") }
            context = fresh
        }
        let readers: [String]
        do {
            readers = try listReaders()
        } catch {
            // pcscd may have restarted: a new context next time.
            SCardReleaseContext(context)
            context = 0
            throw error
        }
        let candidates = readers.filter { name in readerMatch.map { name.contains($0) } ?? true }
        guard !candidates.isEmpty else {
            throw CardError(
                .unavailable,
                readerMatch.map {
                    "no reader whose name contains '\($0)' (readers: \(readers.joined(separator: ", ")))"
                } ?? "no smart-card reader"
            )
        }
        var reasons: [String] = []
        for name in candidates {
            var card: SCARDHANDLE = 0
            var active: DWORD = 0
            let status = SCardConnect(
                context,
                name,
                DWORD(SCARD_SHARE_SHARED),
                DWORD(SCARD_PROTOCOL_T1),
                &card,
                &active
            )
            guard status == PCSCCode.success.rawValue else {
                reasons.append("\(name): \(PCSCCode(rawValue: status).map { "\($0)" } ?? String(status, radix: 16))")
                continue
            }
            handle = card
            readerName = name
            return
        }
        throw CardError(.unavailable, "no card to use (\(reasons.joined(separator: "; ")))")
    }

    private func disconnect() {
        if handle != 0 { SCardDisconnect(handle, DWORD(SCARD_LEAVE_CARD)) }
        handle = 0
        readerName = nil
    }

    /// The names of the readers pcscd knows, with or without a card: for finding a card by
    /// what it holds (a user's card by its serial) rather than by where it is.
    public static func readerNames() throws(CardError) -> [String] {
        guard PCSCLifetime.shared.enter() else {
            throw CardError(.unavailable, "the cards are closed: ukeyd is stopping")
        }
        defer { PCSCLifetime.shared.leave() }
        var context: SCARDCONTEXT = 0
        let status = SCardEstablishContext(DWORD(SCARD_SCOPE_SYSTEM), nil, nil, &context)
        guard status == PCSCCode.success.rawValue else { throw CardError.pcsc(status, "connecting to pcscd") }
        defer { SCardReleaseContext(context) }
        return try names(in: context)
    }

    private func listReaders() throws(CardError) -> [String] {
        try Self.names(in: context)
    }

    private static func names(in context: SCARDCONTEXT) throws(CardError) -> [String] {
        var size: DWORD = 0
        var status = SCardListReaders(context, nil, nil, &size)
        if status == PCSCCode.noReadersAvailable.rawValue { return [] }
        guard status == PCSCCode.success.rawValue else { throw CardError.pcsc(status, "listing readers") }
        guard size > 0, size < 65_536 else { return [] }
        var buffer = [CChar](repeating: 0, count: Int(size))
        status = SCardListReaders(context, nil, &buffer, &size)
        if status == PCSCCode.noReadersAvailable.rawValue { return [] }
        guard status == PCSCCode.success.rawValue else { throw CardError.pcsc(status, "listing readers") }
        // A multi-string: names separated by NULs, ending in an empty one.
        return buffer.split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    }
}
