import UkeyPIV
import UkeyVirtualCard

extension FuzzTarget {
    /// ukey-vcard's card: the APDU and BER-TLV parsers and the PIV state machine behind them.
    /// The input is a session: APDUs, each after a one-byte length. The first byte's low bits start
    /// the session with the PIN verified and the management key authenticated, so the fuzzer
    /// reaches what a challenge-response would otherwise guard.
    static let pivCard = FuzzTarget(
        name: "piv-card",
        property:
            "every APDU gets one answer of at most 256 data bytes and a status word; the state stays within its bounds (tries 0-3, objects at most 4 KiB, keys that are P-256 scalars); TLV and APDU readers take only what adds up",
        check: { bytes throws(FuzzFailure) in
            guard let flags = bytes.first else { return }
            if let elements = try? TLV.parse(bytes) {
                try require(
                    elements.reduce(0) { $0 + $1.value.count } <= bytes.count,
                    "TLV values longer than their input"
                )
            }
            if let apdu = try? CommandAPDU(parsing: bytes) {
                try require(
                    [0, 1, 2, 3, 5].contains(bytes.count - 4 - apdu.data.count),
                    "an APDU whose parts do not add up to its length"
                )
            }
            let card = PIVCard(state: fuzzState) { _ in }
            card.pinVerified = flags & 1 != 0
            card.managementAuthenticated = flags & 2 != 0
            var index = 1
            while index < bytes.count {
                let length = Int(bytes[index])
                index += 1
                let apdu = Array(bytes[index..<min(index + length, bytes.count)])
                index += length
                let response = card.respond(to: apdu)
                try require((2...258).contains(response.count), "an answer of \(response.count) bytes")
                let state = card.state
                try require(
                    (0...PIVCardState.maxTries).contains(state.pinTriesLeft)
                        && (0...PIVCardState.maxTries).contains(state.pukTriesLeft),
                    "tries out of range"
                )
                try require(
                    state.objects.values.allSatisfy { $0.count <= PIVCardState.maxObjectLength },
                    "an object past the limit"
                )
                try require(state.keys.values.allSatisfy { $0.count == 32 }, "a key that is not a P-256 scalar")
                try require(
                    state.managementKey.count == state.managementKeyAlgorithm.keyLength,
                    "a management key of the wrong length"
                )
            }
        },
        seeds: {
            func session(_ flags: UInt8, _ apdus: [[UInt8]]) -> [UInt8] {
                [flags] + apdus.flatMap { [UInt8($0.count)] + $0 }
            }
            let select: [UInt8] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08]
            return [
                session(
                    0,
                    [
                        select, [0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x02],
                        [0x00, 0xC0, 0x00, 0x00, 0x08], [0x00, 0x20, 0x00, 0x80, 0x00],
                    ]
                ),
                session(
                    0,
                    [
                        [0x00, 0x20, 0x00, 0x80, 0x08, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0xFF, 0xFF],
                        [0x00, 0x87, 0x03, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00],
                    ]
                ),
                session(
                    3,
                    [
                        [0x00, 0x47, 0x00, 0x9A, 0x05, 0xAC, 0x03, 0x80, 0x01, 0x11],
                        [0x00, 0x87, 0x11, 0x9A, 0x26, 0x7C, 0x24, 0x82, 0x00, 0x81, 0x20]
                            + Array(repeating: 7, count: 32),
                        [0x10, 0xDB, 0x3F, 0xFF, 0x0A, 0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x53, 0x03, 0x70, 0x01, 0x00],
                        [0x00, 0xDB, 0x3F, 0xFF, 0x01, 0x00],
                        [0x00, 0xFF, 0xFF, 0xFF, 0x13, 0x08, 0x9B, 0x10] + Array(repeating: 1, count: 16),
                    ]
                ),
            ]
        }
    )

    /// A fixed card, so runs are reproducible (a factory card draws its serial at random).
    static let fuzzState: PIVCardState = {
        var state = PIVCardState.factory()
        state.serial = 12_345_678
        state.guid = Array(repeating: 0x11, count: 16)
        return state
    }()
}
