import UkeyCodec
/// The binary form of the crypto-agile log (TCG PC Client PFP, sections 10.2.1 and 10.4.5.1).
extension EventLog {
    /// `"Spec ID Event03\0"`, the signature of the header event (PFP 10.4.5.1).
    static let specIDSignature: [UInt8] = Array("Spec ID Event03".utf8) + [0]
    /// PFP platform class 0: client.
    static let platformClass: UInt32 = 0
    /// `uintnSize` 2 means UINTN is 64 bits.
    static let uintnSize: UInt8 = 2

    /// Limits for untrusted logs: far above anything ukey writes, far below what could exhaust memory.
    public enum Limits {
        public static let maxLogBytes = 64 << 20
        public static let maxEventDataBytes = 1 << 20
        public static let maxAlgorithms = 16
        public static let maxDigestSize = 64
    }

    /// The log as bytes: the header event, then every event.
    public func serialized() -> [UInt8] {
        var out = ByteWriter()
        var spec = ByteWriter()
        spec.append(Self.specIDSignature)
        spec.u32(Self.platformClass)
        spec.u8(0)  // specVersionMinor
        spec.u8(2)  // specVersionMajor
        spec.u8(0)  // specErrata
        spec.u8(Self.uintnSize)
        spec.u32(UInt32(algorithms.count))
        for algorithm in algorithms {
            spec.u16(algorithm.algorithmID)
            spec.u16(algorithm.digestSize)
        }
        spec.u8(UInt8(vendorInfo.count))
        spec.append(vendorInfo)

        // The header is a TCG_PCClientPCREvent (SHA-1 format): register 0, EV_NO_ACTION, 20 zero bytes.
        out.u32(0)
        out.u32(TCGEventType.noAction)
        out.append(Array(repeating: 0, count: 20))
        out.u32(UInt32(spec.bytes.count))
        out.append(spec.bytes)

        for event in events {
            out.u32(event.registerIndex)
            out.u32(event.eventType)
            out.u32(UInt32(event.digests.count))
            for digest in event.digests {
                out.u16(digest.algorithmID)
                out.append(digest.bytes)
            }
            out.u32(UInt32(event.data.count))
            out.append(event.data)
        }
        return out.bytes
    }

    /// Parses a crypto-agile event log from untrusted bytes. Every size is checked against the
    /// buffer and the limits above; anything else is refused with the byte offset.
    public init(parsing bytes: [UInt8]) throws(UkeyCoreError) {
        guard bytes.count <= Limits.maxLogBytes else {
            throw UkeyCoreError(
                .malformedEventLog,
                "event log is \(bytes.count) bytes; the limit is \(Limits.maxLogBytes)"
            )
        }
        var reader = EventLogReader(bytes, what: "event log", endianness: .little) {
            UkeyCoreError(.malformedEventLog, $0)
        }
        guard !reader.isAtEnd else { throw UkeyCoreError(.malformedEventLog, "event log is empty") }

        let headerRegister = try reader.u32("header register index")
        let headerType = try reader.u32("header event type")
        guard headerRegister == 0, headerType == TCGEventType.noAction else {
            throw reader.fail("the first event must be the Spec ID event (register 0, EV_NO_ACTION)", at: 0)
        }
        _ = try reader.read(20, "header SHA-1 digest")
        let specSize = try reader.u32("header event size")
        guard specSize <= 4096 else { throw reader.fail("Spec ID event of \(specSize) bytes is too large") }
        var spec = EventLogReader(
            try reader.read(Int(specSize), "Spec ID event"),
            what: "Spec ID event",
            endianness: .little
        ) { UkeyCoreError(.malformedEventLog, $0) }
        guard try spec.read(16, "signature") == Self.specIDSignature else {
            throw UkeyCoreError(.malformedEventLog, "the header is not a 'Spec ID Event03' (not a crypto-agile log)")
        }
        _ = try spec.u32("platform class")
        _ = try spec.u8("spec version minor")
        let major = try spec.u8("spec version major")
        _ = try spec.u8("spec errata")
        _ = try spec.u8("uintn size")
        guard major == 2 else { throw spec.fail("spec version major is \(major); a crypto-agile log has 2") }
        let count = try spec.u32("number of algorithms")
        guard count >= 1, count <= Limits.maxAlgorithms else {
            throw spec.fail("declares \(count) algorithms; expected 1-\(Limits.maxAlgorithms)")
        }
        var algorithms: [AlgorithmSize] = []
        for _ in 0..<count {
            let id = try spec.u16("algorithm id")
            let size = try spec.u16("digest size")
            guard size >= 1, size <= Limits.maxDigestSize else {
                throw spec.fail("algorithm 0x\(String(id, radix: 16)) has digest size \(size)")
            }
            if let known = HashAlgorithm(tcgAlgorithmID: id), known.digestSize != Int(size) {
                throw spec.fail("\(known.rawValue) is declared with size \(size), not \(known.digestSize)")
            }
            guard !algorithms.contains(where: { $0.algorithmID == id }) else {
                throw spec.fail("algorithm 0x\(String(id, radix: 16)) is declared twice")
            }
            algorithms.append(AlgorithmSize(algorithmID: id, digestSize: size))
        }
        let vendorSize = try spec.u8("vendor info size")
        let vendorInfo = try spec.read(Int(vendorSize), "vendor info")

        var events: [Event] = []
        while !reader.isAtEnd {
            let start = reader.offset
            let register = try reader.u32("register index")
            guard register < ExpectedSet.registerCount else {
                throw reader.fail("event names register \(register); registers are 0-23", at: start)
            }
            let type = try reader.u32("event type")
            let digestCount = try reader.u32("digest count")
            guard digestCount <= UInt32(algorithms.count) else {
                throw reader.fail(
                    "event has \(digestCount) digests but the header declares \(algorithms.count)",
                    at: start
                )
            }
            var digests: [AlgorithmDigest] = []
            for _ in 0..<digestCount {
                let id = try reader.u16("digest algorithm")
                guard let declared = algorithms.first(where: { $0.algorithmID == id }) else {
                    throw reader.fail("digest algorithm 0x\(String(id, radix: 16)) is not declared in the header")
                }
                guard !digests.contains(where: { $0.algorithmID == id }) else {
                    throw reader.fail("digest algorithm 0x\(String(id, radix: 16)) appears twice in one event")
                }
                digests.append(
                    AlgorithmDigest(algorithmID: id, bytes: try reader.read(Int(declared.digestSize), "digest"))
                )
            }
            let dataSize = try reader.u32("event data size")
            guard dataSize <= UInt32(Limits.maxEventDataBytes) else {
                throw reader.fail("event data of \(dataSize) bytes exceeds the \(Limits.maxEventDataBytes)-byte limit")
            }
            let data = try reader.read(Int(dataSize), "event data")
            events.append(Event(registerIndex: register, eventType: type, digests: digests, data: data))
        }
        self.init(algorithms: algorithms, vendorInfo: vendorInfo, events: events)
    }
}

/// The event log is little-endian throughout (TCG PC Client Platform Firmware Profile).
typealias EventLogReader = ByteReader<UkeyCoreError>
