import Foundation
import UkeyCore

/// The "ukey-v1" quote: canonical bytes that a soft or smart-card token signs to attest the
/// registers of the current boot (docs/quote-format.md). All integers are big-endian.
///
/// ```
/// "UKEYQT01"                      8 bytes
/// nonce                           u16 length (1-64) + bytes
/// boot id                         u16 length (1-128) + UTF-8
/// boot counter                    u64   boots since the token was initialised
/// time                            u64   seconds since 1970-01-01 UTC
/// bank                            u16   TPM_ALG_ID of the register bank
/// register count                  u8    1-24, indices strictly ascending
///   register                      u8 index + bank-size digest, per register
/// event log                       u16 TPM_ALG_ID + digest of the serialized event log
/// ```
public struct UkeyQuote: Sendable, Hashable {
    public static let magic = Array("UKEYQT01".utf8)
    public static let format = "ukey-v1"
    public static let maxNonce = 64
    public static let maxBootID = 128

    public var nonce: [UInt8]
    public var bootID: String
    public var bootCounter: UInt64
    public var time: UInt64
    public var bank: HashAlgorithm
    public var registers: [(index: Int, value: [UInt8])]
    public var eventLog: Digest

    public init(
        nonce: [UInt8],
        bootID: String,
        bootCounter: UInt64,
        time: UInt64,
        bank: HashAlgorithm,
        registers: [(index: Int, value: [UInt8])],
        eventLog: Digest
    ) {
        self.nonce = nonce
        self.bootID = bootID
        self.bootCounter = bootCounter
        self.time = time
        self.bank = bank
        self.registers = registers
        self.eventLog = eventLog
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.encoded() == rhs.encoded() }
    public func hash(into hasher: inout Hasher) { hasher.combine(encoded()) }

    /// Checks the fields a quote may carry; the signer calls it before signing.
    public static func validate(nonce: [UInt8], bootID: String, registers: [Int]) throws(TokenError) {
        guard (1...maxNonce).contains(nonce.count) else {
            throw TokenError(.invalidArgument, "nonce must be 1-\(maxNonce) bytes, got \(nonce.count)")
        }
        guard (1...maxBootID).contains(bootID.utf8.count) else {
            throw TokenError(.invalidArgument, "boot id must be 1-\(maxBootID) bytes")
        }
        guard !registers.isEmpty, registers.count <= ExpectedSet.registerCount,
            registers.allSatisfy({ (0..<ExpectedSet.registerCount).contains($0) }),
            Set(registers).count == registers.count
        else {
            throw TokenError(.invalidArgument, "registers must be 1-24 distinct indices in 0-23")
        }
    }

    public func encoded() -> [UInt8] {
        var out = Self.magic
        func u16(_ v: Int) { out += [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func u64(_ v: UInt64) { out += (0..<8).reversed().map { UInt8(v >> (UInt64($0) * 8) & 0xff) } }
        u16(nonce.count)
        out += nonce
        u16(bootID.utf8.count)
        out += bootID.utf8
        u64(bootCounter)
        u64(time)
        u16(Int(bank.tcgAlgorithmID))
        out.append(UInt8(registers.count))
        for register in registers.sorted(by: { $0.index < $1.index }) {
            out.append(UInt8(register.index))
            out += register.value
        }
        u16(Int(eventLog.algorithm.tcgAlgorithmID))
        out += eventLog.bytes
        return out
    }

    /// Parses untrusted quote bytes; every length is checked.
    public init(parsing bytes: [UInt8]) throws(TokenError) {
        var reader = BigEndianReader(bytes, what: "quote", endianness: .big) { TokenError(.invalidArgument, $0) }
        func take(_ count: Int, _ field: String) throws(TokenError) -> [UInt8] { try reader.read(count, field) }
        func u16(_ field: String) throws(TokenError) -> Int { Int(try reader.u16(field)) }
        func u64(_ field: String) throws(TokenError) -> UInt64 { try reader.u64(field) }
        func algorithm(_ field: String) throws(TokenError) -> HashAlgorithm {
            let id = try u16(field)
            guard let algorithm = HashAlgorithm(tcgAlgorithmID: UInt16(id)) else {
                throw TokenError(
                    .invalidArgument,
                    "quote names unknown algorithm 0x\(String(id, radix: 16)) in \(field)"
                )
            }
            return algorithm
        }
        guard try take(8, "magic") == Self.magic else {
            throw TokenError(.invalidArgument, "not a ukey-v1 quote (bad magic)")
        }
        let nonceLength = try u16("nonce length")
        guard (1...Self.maxNonce).contains(nonceLength) else {
            throw TokenError(.invalidArgument, "quote nonce length \(nonceLength) is out of range")
        }
        nonce = try take(nonceLength, "nonce")
        let bootLength = try u16("boot id length")
        guard (1...Self.maxBootID).contains(bootLength),
            let boot = String(validating: try take(bootLength, "boot id"), as: UTF8.self)
        else {
            throw TokenError(.invalidArgument, "quote boot id is malformed")
        }
        bootID = boot
        bootCounter = try u64("boot counter")
        time = try u64("time")
        bank = try algorithm("bank")
        let count = Int(try take(1, "register count")[0])
        guard (1...ExpectedSet.registerCount).contains(count) else {
            throw TokenError(.invalidArgument, "quote selects \(count) registers")
        }
        var registers: [(index: Int, value: [UInt8])] = []
        for _ in 0..<count {
            let index = Int(try take(1, "register index")[0])
            let previous = registers.last?.index ?? -1
            guard (0..<ExpectedSet.registerCount).contains(index), index > previous else {
                throw TokenError(.invalidArgument, "quote register indices must ascend within 0-23")
            }
            registers.append((index, try take(bank.digestSize, "register value")))
        }
        self.registers = registers
        let logAlgorithm = try algorithm("event log algorithm")
        do {
            eventLog = try Digest(algorithm: logAlgorithm, bytes: try take(logAlgorithm.digestSize, "event log digest"))
        } catch let error as TokenError {
            throw error
        } catch {
            throw TokenError(.invalidArgument, "quote event-log digest is malformed")
        }
        guard reader.isAtEnd else { throw TokenError(.invalidArgument, "quote has \(reader.remaining) trailing bytes") }
    }
}
