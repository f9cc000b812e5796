/// A command APDU (ISO 7816-4), short or extended, read from untrusted bytes.
public struct CommandAPDU: Sendable, Hashable {
    public var cla: UInt8
    public var ins: UInt8
    public var p1: UInt8
    public var p2: UInt8
    public var data: [UInt8]
    /// The most response bytes the reader wants; nil when the command carried no Le.
    public var le: Int?

    /// The largest command ukey-vcard reads: an extended APDU's 65,535 data bytes plus header.
    public static let maxLength = 4 + 3 + 65_535 + 3

    /// Whether more of this command follows (command chaining, CLA bit 0x10).
    public var chained: Bool { cla & 0x10 != 0 }

    public init(cla: UInt8, ins: UInt8, p1: UInt8, p2: UInt8, data: [UInt8] = [], le: Int? = nil) {
        self.cla = cla
        self.ins = ins
        self.p1 = p1
        self.p2 = p2
        self.data = data
        self.le = le
    }

    public struct Malformed: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The command as a short APDU (what vpcd and most readers carry); data longer than 255
    /// bytes must be chained (`PIVClient` does).
    public var shortEncoding: [UInt8] {
        var bytes = [cla, ins, p1, p2]
        if !data.isEmpty { bytes += [UInt8(data.count & 0xFF)] + data }
        if let le { bytes.append(le >= 256 ? 0 : UInt8(le)) }
        return bytes
    }

    /// Parses the four cases of ISO 7816-4 5.1, short and extended; anything else is refused.
    public init(parsing bytes: [UInt8]) throws(Malformed) {
        guard bytes.count >= 4 else { throw Malformed(description: "an APDU has at least 4 bytes, got \(bytes.count)") }
        guard bytes.count <= Self.maxLength else {
            throw Malformed(description: "an APDU of \(bytes.count) bytes is longer than any PIV command")
        }
        cla = bytes[0]
        ins = bytes[1]
        p1 = bytes[2]
        p2 = bytes[3]
        data = []
        le = nil
        let body = Array(bytes[4...])
        switch body.count {
        case 0:
            return  // case 1
        case 1:
            le = body[0] == 0 ? 256 : Int(body[0])  // case 2 short
            return
        default:
            break
        }
        if body[0] != 0 {
            // Short: Lc, data, optional Le.
            let lc = Int(body[0])
            switch body.count {
            case 1 + lc: data = Array(body[1...])
            case 2 + lc:
                data = Array(body[1..<(1 + lc)])
                le = body[1 + lc] == 0 ? 256 : Int(body[1 + lc])
            default: throw Malformed(description: "Lc says \(lc) data bytes, the APDU has \(body.count - 1) after it")
            }
            return
        }
        // Extended: 00, then a 2-byte Le (case 2E) or a 2-byte Lc, data, optional 2-byte Le.
        guard body.count >= 3 else { throw Malformed(description: "an extended length needs 3 bytes") }
        let first = Int(body[1]) << 8 | Int(body[2])
        if body.count == 3 {
            le = first == 0 ? 65_536 : first
            return
        }
        guard first > 0 else { throw Malformed(description: "an extended Lc of 0") }
        switch body.count {
        case 3 + first: data = Array(body[3...])
        case 5 + first:
            data = Array(body[3..<(3 + first)])
            let extendedLe = Int(body[3 + first]) << 8 | Int(body[4 + first])
            le = extendedLe == 0 ? 65_536 : extendedLe
        default:
            throw Malformed(
                description: "extended Lc says \(first) data bytes, the APDU has \(body.count - 3) after it"
            )
        }
    }
}

/// The status words ukey-vcard answers with (ISO 7816-4, SP 800-73-4).
public struct StatusWord: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16

    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let ok = StatusWord(0x9000)
    public static let wrongLength = StatusWord(0x6700)
    public static let securityNotSatisfied = StatusWord(0x6982)
    public static let authenticationBlocked = StatusWord(0x6983)
    public static let conditionsNotSatisfied = StatusWord(0x6985)
    public static let wrongData = StatusWord(0x6A80)
    public static let notFound = StatusWord(0x6A82)
    public static let notEnoughMemory = StatusWord(0x6A84)
    public static let incorrectP1P2 = StatusWord(0x6A86)
    public static let referenceNotFound = StatusWord(0x6A88)
    public static let insNotSupported = StatusWord(0x6D00)
    public static let claNotSupported = StatusWord(0x6E00)
    public static let memoryFailure = StatusWord(0x6581)
    public static let unknown = StatusWord(0x6F00)

    /// A wrong PIN or PUK: `63Cx`, x the tries left (at most 15).
    public static func triesLeft(_ count: Int) -> StatusWord { StatusWord(0x63C0 | UInt16(max(0, min(count, 15)))) }

    public var bytes: [UInt8] { [UInt8(rawValue >> 8), UInt8(rawValue & 0xFF)] }
    public var description: String { String(rawValue, radix: 16, uppercase: true) }
}
