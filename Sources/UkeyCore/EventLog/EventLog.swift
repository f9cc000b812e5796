/// A TCG PC Client Platform Firmware Profile event log in the crypto-agile format (PFP spec,
/// section 10.2.1 and 10.4.5): a `Spec ID Event03` header in the SHA-1 event format, then one
/// `TCG_PCR_EVENT2` per measurement carrying a digest for every bank the header declares.
///
/// Readers such as `tpm2_eventlog` replay it to the register values; ukey's registers must match.
public struct EventLog: Hashable, Sendable {
    /// An algorithm declared in the header and the size of its digests.
    public struct AlgorithmSize: Hashable, Sendable {
        public let algorithmID: UInt16
        public let digestSize: UInt16

        public init(algorithmID: UInt16, digestSize: UInt16) {
            self.algorithmID = algorithmID
            self.digestSize = digestSize
        }
    }

    /// One `TCG_PCR_EVENT2`.
    public struct Event: Hashable, Sendable {
        public let registerIndex: UInt32
        public let eventType: UInt32
        /// One digest per declared algorithm, in header order: (TPM_ALG_ID, bytes).
        public let digests: [AlgorithmDigest]
        public let data: [UInt8]

        public init(registerIndex: UInt32, eventType: UInt32, digests: [AlgorithmDigest], data: [UInt8]) {
            self.registerIndex = registerIndex
            self.eventType = eventType
            self.digests = digests
            self.data = data
        }
    }

    /// A digest tagged with its TCG algorithm identifier; the identifier may be one ukey does not
    /// know (a firmware log's SHA-1 or SM3 bank), so it is not a `Digest`.
    public struct AlgorithmDigest: Hashable, Sendable {
        public let algorithmID: UInt16
        public let bytes: [UInt8]

        public init(algorithmID: UInt16, bytes: [UInt8]) {
            self.algorithmID = algorithmID
            self.bytes = bytes
        }
    }

    public let algorithms: [AlgorithmSize]
    /// The Spec ID header's vendor info (at most 255 bytes). ukey writes the boot id there, and the
    /// boot it replaced after a reset, so each boot's log names itself without adding an event
    /// that a replaying verifier would have to skip.
    public let vendorInfo: [UInt8]
    public private(set) var events: [Event]

    /// An empty log whose header declares `banks`, with `vendorInfo` cut to 255 bytes.
    public init(banks: [HashAlgorithm], vendorInfo: String = "ukey") {
        self.algorithms = banks.map { AlgorithmSize(algorithmID: $0.tcgAlgorithmID, digestSize: UInt16($0.digestSize)) }
        self.vendorInfo = Array(vendorInfo.utf8.prefix(255))
        self.events = []
    }

    init(algorithms: [AlgorithmSize], vendorInfo: [UInt8], events: [Event]) {
        self.algorithms = algorithms
        self.vendorInfo = vendorInfo
        self.events = events
    }

    /// Appends an EV_IPL event for a measurement and returns its index (0-based, header excluded).
    @discardableResult
    public mutating func appendMeasurement(register: Int, digest: Digest, description: String) -> Int {
        let digests = algorithms.compactMap { declared -> AlgorithmDigest? in
            guard let bank = HashAlgorithm(tcgAlgorithmID: declared.algorithmID) else { return nil }
            return AlgorithmDigest(algorithmID: declared.algorithmID, bytes: digest.measurement(for: bank))
        }
        return append(
            Event(
                registerIndex: UInt32(register),
                eventType: TCGEventType.ipl,
                digests: digests,
                data: Array(description.utf8)
            )
        )
    }

    @discardableResult
    public mutating func append(_ event: Event) -> Int {
        events.append(event)
        return events.count - 1
    }

    /// Replays every extending event into a fresh register set: what a verifier computes.
    /// Banks ukey does not know are skipped.
    public func replay() -> RegisterSet {
        let known = Set(algorithms.compactMap { HashAlgorithm(tcgAlgorithmID: $0.algorithmID) })
        var registers = RegisterSet(algorithms: known)
        for event in events where event.eventType != TCGEventType.noAction {
            for digest in event.digests {
                guard let algorithm = HashAlgorithm(tcgAlgorithmID: digest.algorithmID),
                    registers.banks[algorithm] != nil
                else { continue }
                // The reader checked sizes and register indices, so this cannot fail for a parsed log.
                try? registers.extendBank(algorithm, register: Int(event.registerIndex), with: digest.bytes)
            }
        }
        return registers
    }
}

extension RegisterSet {
    mutating func extendBank(_ algorithm: HashAlgorithm, register: Int, with bytes: [UInt8]) throws(UkeyCoreError) {
        guard var bank = banks[algorithm] else { return }
        try bank.extend(register, with: bytes)
        banks[algorithm] = bank
    }
}
