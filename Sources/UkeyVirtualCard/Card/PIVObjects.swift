import UkeyPIV

/// The PIV application's identifiers and the data objects the card builds itself.
enum PIVObjects {
    /// The PIV application: NIST's RID and the PIX of PIV version 1.0.
    static let aid: [UInt8] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00]

    static let chuid = 0x5FC102
    static let capabilityContainer = 0x5FC107
    static let printedInformation = 0x5FC109
    static let keyHistory = 0x5FC10C
    static let discovery = 0x7E

    /// Objects that only a verified PIN may read (SP 800-73-4 part 1, 3.1: printed information,
    /// fingerprints, facial image, iris).
    static let pinProtected: Set<Int> = [0x5FC109, 0x5FC103, 0x5FC108, 0x5FC121]
    /// Objects PUT DATA may write: the containers of SP 800-73-4 part 1 table 3.
    static let writable: Set<Int> = Set(0x5FC101...0x5FC123).union([0x5FFF01])

    /// The application property template SELECT answers with: OpenSC and yubico-piv-tool find a
    /// PIV card by it.
    static let applicationPropertyTemplate: [UInt8] = TLV.encode(
        0x61,
        TLV.encode(0x4F, [0x00, 0x00, 0x10, 0x00, 0x01, 0x00])
            + TLV.encode(0x79, TLV.encode(0x4F, Array(aid.prefix(5))))
            + TLV.encode(0x50, Array("ukey virtual PIV".utf8))
            + TLV.encode(
                0xAC,
                [
                    0x80, 0x01, 0x03, 0x80, 0x01, 0x08, 0x80, 0x01, 0x0A, 0x80, 0x01, 0x0C, 0x80, 0x01, 0x11, 0x06,
                    0x01, 0x00,
                ]
            )
    )

    /// The discovery object: the PIV AID, and a PIN usage policy of "PIV PIN only".
    static let discoveryObject: [UInt8] = TLV.encode(0x7E, TLV.encode(0x4F, aid) + TLV.encode(0x5F2F, [0x40, 0x00]))

    /// The CHUID: a FASC-N of "no agency", the card's GUID, an expiry, an empty signature.
    static func chuid(guid: [UInt8]) -> [UInt8] {
        let fascN: [UInt8] = [
            0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42, 0x10,
            0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
        ]
        return TLV.encode(0x30, fascN) + TLV.encode(0x34, guid) + TLV.encode(0x35, Array("20351231".utf8))
            + TLV.encode(0x3E, []) + TLV.encode(0xFE, [])
    }

    /// The card capability container, with a card identifier made from the serial.
    static func capabilityContainer(serial: UInt32, guid: [UInt8]) -> [UInt8] {
        let identifier: [UInt8] =
            [0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02] + Array(guid.prefix(10))
            + withUnsafeBytes(of: serial.bigEndian, Array.init)
        return TLV.encode(0xF0, identifier) + TLV.encode(0xF1, [0x21]) + TLV.encode(0xF2, [0x21]) + TLV.encode(0xF3, [])
            + TLV.encode(0xF4, [0x00]) + TLV.encode(0xF5, [0x10]) + TLV.encode(0xF6, []) + TLV.encode(0xF7, [])
            + TLV.encode(0xFA, []) + TLV.encode(0xFB, []) + TLV.encode(0xFC, []) + TLV.encode(0xFD, [])
            + TLV.encode(0xFE, [])
    }
}
