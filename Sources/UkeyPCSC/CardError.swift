/// What went wrong talking to a card, in words an operator can act on.
public struct CardError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Hashable {
        /// No pcscd, no reader, no card, or the card was pulled: nothing was done on the card.
        case unavailable
        /// The card answered with a status word that is not success.
        case refused(UInt16)
        /// The card is not the one this token was enrolled with.
        case wrongCard
        /// The answer did not parse.
        case malformed
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// pcsc-lite's error codes that mean "no card to talk to"; anything else is unexpected.
    static func pcsc(_ code: Int, _ doing: String) -> CardError {
        let name =
            PCSCCode(rawValue: code).map { "\($0)" } ?? "0x" + String(UInt32(truncatingIfNeeded: code), radix: 16)
        return CardError(.unavailable, "\(doing): \(name)")
    }
}

/// The PC/SC return codes ukey names (pcsclite.h; on Linux they are positive 64-bit values, and
/// the header's cast macros do not import into Swift).
enum PCSCCode: Int, CustomStringConvertible {
    case success = 0
    case timeout = 0x8010_000A
    case sharingViolation = 0x8010_000B
    case noSmartcard = 0x8010_000C
    case unknownReader = 0x8010_0009
    case notTransacted = 0x8010_0016
    case readerUnavailable = 0x8010_0017
    case noService = 0x8010_001D
    case serviceStopped = 0x8010_001E
    case noReadersAvailable = 0x8010_002E
    case insufficientBuffer = 0x8010_0008
    case invalidHandle = 0x8010_0003
    case unresponsiveCard = 0x8010_0066
    case unpoweredCard = 0x8010_0067
    case resetCard = 0x8010_0068
    case removedCard = 0x8010_0069

    var description: String {
        switch self {
        case .success: "success"
        case .timeout: "timed out"
        case .sharingViolation: "another program holds the card exclusively"
        case .noSmartcard: "no card in the reader"
        case .unknownReader: "the reader is gone"
        case .notTransacted: "the card went away during the exchange"
        case .readerUnavailable: "the reader is unavailable"
        case .noService: "pcscd is not running"
        case .serviceStopped: "pcscd stopped"
        case .noReadersAvailable: "no smart-card reader"
        case .insufficientBuffer: "the answer did not fit the buffer"
        case .invalidHandle: "the connection to the card is no longer valid"
        case .unresponsiveCard: "the card does not answer"
        case .unpoweredCard: "the card is not powered"
        case .resetCard: "the card was reset"
        case .removedCard: "the card was removed"
        }
    }
}
