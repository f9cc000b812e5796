import Crypto
import UkeyPIV

/// Everything a card keeps across power cycles: PIN and PUK with their counters, the management
/// key, the asymmetric keys by slot and the data objects. Sealed on disk by `PIVStateFile`.
public struct PIVCardState: Codable, Sendable, Hashable {
    /// The factory PIN, PUK and management key every PIV card and YubiKey ships with: public
    /// values, to be changed at enrolment (`ukeyctl card enroll` does; yubico-piv-tool
    /// `-a change-pin`, `-a change-puk`, `-a set-mgm-key` do too).
    public static let defaultPIN = Array("123456".utf8)
    public static let defaultPUK = Array("12345678".utf8)
    public static let defaultManagementKey: [UInt8] = Array(
        repeating: [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
        count: 3
    ).flatMap { $0 }
    public static let maxTries = 3
    /// The largest data object PUT DATA stores (a certificate container; a YubiKey's limit is ~3 KB).
    public static let maxObjectLength = 4096

    public var serial: UInt32
    public var guid: [UInt8]
    /// 8 bytes, padded with 0xFF as VERIFY carries it.
    public var pin: [UInt8]
    public var pinTriesLeft: Int
    public var puk: [UInt8]
    public var pukTriesLeft: Int
    public var managementKeyAlgorithm: ManagementKeyAlgorithm
    public var managementKey: [UInt8]
    /// P-256 private keys (raw scalars) by slot: 9a, 9c, 9d, 9e.
    public var keys: [PIVSlot: [UInt8]]
    /// Data objects by tag (`5FC105`...): what follows tag 53.
    public var objects: [Int: [UInt8]]

    /// A card as it leaves the factory: default PIN, PUK and management key, no keys.
    public static func factory() -> PIVCardState {
        var generator = SystemRandomNumberGenerator()
        return PIVCardState(
            serial: UInt32.random(in: 1_000_000...99_999_999, using: &generator),
            guid: (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) },
            pin: padded(defaultPIN),
            pinTriesLeft: maxTries,
            puk: padded(defaultPUK),
            pukTriesLeft: maxTries,
            managementKeyAlgorithm: .tripleDES,
            managementKey: defaultManagementKey,
            keys: [:],
            objects: [:]
        )
    }

    /// A PIN or PUK as VERIFY sends it: 8 bytes, 0xFF after the last character.
    static func padded(_ secret: [UInt8]) -> [UInt8] {
        secret + Array(repeating: 0xFF, count: max(0, 8 - secret.count))
    }
}
