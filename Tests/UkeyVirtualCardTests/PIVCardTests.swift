import UkeyPIV
import Crypto
import Foundation
import Testing
import UkeyTesting

@testable import UkeyVirtualCard

/// The card at the APDU level, with its state written to memory (or refused) by the test.
@Suite("ukey-vcard: the PIV card, APDU by APDU")
struct PIVCardTests {
    /// A card whose every durable write is recorded; `failWrites` makes writes fail.
    final class Harness {
        var written: [PIVCardState] = []
        var failWrites = false
        lazy var card = PIVCard(state: .factory()) { [unowned self] state in
            struct DiskFull: Error {}
            if self.failWrites { throw DiskFull() }
            self.written.append(state)
        }

        /// Sends an APDU; returns data and status word.
        @discardableResult
        func send(_ bytes: [UInt8]) -> (data: [UInt8], sw: UInt16) {
            let response = card.respond(to: bytes)
            #expect(response.count >= 2, "a response always ends in a status word")
            return (
                Array(response.dropLast(2)),
                UInt16(response[response.count - 2]) << 8 | UInt16(response[response.count - 1])
            )
        }

        @discardableResult
        func apdu(
            _ ins: UInt8,
            _ p1: UInt8,
            _ p2: UInt8,
            _ data: [UInt8] = [],
            cla: UInt8 = 0,
            le: UInt8? = nil
        ) -> (data: [UInt8], sw: UInt16) {
            var bytes = [cla, ins, p1, p2]
            if !data.isEmpty { bytes += [UInt8(data.count)] + data }
            if let le { bytes.append(le) }
            return send(bytes)
        }

        func verify(_ pin: String) -> UInt16 { apdu(0x20, 0x00, 0x80, PIVCardState.padded(Array(pin.utf8))).sw }

        /// The card authenticates the client (7C{81} then 7C{82 E(C)}) with the default key.
        func authenticateManagementKey(key: [UInt8] = PIVCardState.defaultManagementKey) -> UInt16 {
            let challenge = apdu(0x87, 0x03, 0x9B, [0x7C, 0x02, 0x81, 0x00])
            guard challenge.sw == 0x9000, let outer = try? TLV.parse(challenge.data),
                let c = (try? TLV.parse(outer[0].value))?.value(0x81),
                let answer = try? ManagementKeyCipher.encrypt(c, key: key, algorithm: .tripleDES)
            else { return challenge.sw }
            return apdu(0x87, 0x03, 0x9B, TLV.encode(0x7C, TLV.encode(0x82, answer))).sw
        }

        func generate(_ slot: PIVSlot) -> P256.Signing.PublicKey? {
            let reply = apdu(0x47, 0x00, slot.rawValue, [0xAC, 0x03, 0x80, 0x01, 0x11])
            guard reply.sw == 0x9000, let outer = try? TLV.parse(reply.data), outer.first?.tag == 0x7F49,
                let point = (try? TLV.parse(outer[0].value))?.value(0x86)
            else { return nil }
            return try? P256.Signing.PublicKey(x963Representation: point)
        }
    }

    @Test("SELECT by the 5-byte RID and the full AID answers the 61 template; another AID is 6A82")
    func select() throws {
        let h = Harness()
        for aid in [Array(PIVObjects.aid.prefix(5)), Array(PIVObjects.aid.prefix(9)), PIVObjects.aid] {
            let reply = h.apdu(0xA4, 0x04, 0x00, aid)
            #expect(reply.sw == 0x9000 && reply.data.first == 0x61)
        }
        #expect(h.apdu(0xA4, 0x04, 0x00, [0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01, 0x01]).sw == 0x6A82)
        #expect(h.apdu(0xA4, 0x04, 0x00, [0xA0, 0x00, 0x00, 0x03]).sw == 0x6A82, "4 bytes are no PIV prefix")
    }

    @Test(
        "wrong PINs count down (63C2, 63C1) and block (6983); the PUK unblocks with a new PIN; an empty VERIFY reports the state"
    )
    func pinLifecycle() {
        let h = Harness()
        #expect(h.apdu(0x20, 0x00, 0x80).sw == 0x63C3)
        #expect(h.verify("000000") == 0x63C2)
        #expect(h.verify("000000") == 0x63C1)
        #expect(h.verify("000000") == 0x6983)
        #expect(h.verify("123456") == 0x6983, "a blocked PIN stays blocked, right or wrong")
        #expect(h.apdu(0x20, 0x00, 0x80).sw == 0x6983)
        let unblock = PIVCardState.padded(PIVCardState.defaultPUK) + PIVCardState.padded(Array("24682468".utf8))
        #expect(h.apdu(0x2C, 0x00, 0x80, unblock).sw == 0x9000)
        #expect(h.verify("24682468") == 0x9000 && h.apdu(0x20, 0x00, 0x80).sw == 0x9000)
        #expect(
            h.apdu(0x20, 0xFF, 0x80).sw == 0x9000 && h.apdu(0x20, 0x00, 0x80).sw == 0x63C3,
            "P1 FF resets the verified state"
        )
        let change = PIVCardState.padded(Array("24682468".utf8)) + PIVCardState.padded(Array("1357".utf8))
        #expect(h.apdu(0x24, 0x00, 0x80, change).sw == 0x6A80, "a 4-character PIN is refused")
        #expect(h.card.state.pinTriesLeft == 3)
    }

    @Test(
        "a PIN try is written to disk before the PIN is compared, and given back only after a match; a failed write refuses the check"
    )
    func pinTrySpentFirst() {
        let h = Harness()
        #expect(h.verify("123456") == 0x9000)
        #expect(h.written.map(\.pinTriesLeft) == [2, 3])
        h.written = []
        #expect(h.verify("654321") == 0x63C2)
        #expect(h.written.map(\.pinTriesLeft) == [2])
        h.failWrites = true
        #expect(h.verify("123456") == 0x6581)
        #expect(
            h.card.state.pinTriesLeft == 2 && h.apdu(0x20, 0x00, 0x80).sw == 0x63C2,
            "nothing changed and the PIN is not verified"
        )
    }

    @Test("the management key: the right answer authenticates, a wrong one does not; GENERATE and PUT DATA need it")
    func managementKey() {
        let h = Harness()
        #expect(h.generate(.authentication) == nil)
        #expect(h.apdu(0x47, 0x00, 0x9A, [0xAC, 0x03, 0x80, 0x01, 0x11]).sw == 0x6982)
        #expect(h.authenticateManagementKey(key: Array(repeating: 0x42, count: 24)) == 0x6982)
        #expect(h.generate(.authentication) == nil, "a failed attempt leaves it unauthenticated")
        #expect(h.authenticateManagementKey() == 0x9000)
        #expect(h.generate(.authentication) != nil)
        // A new AES-128 key; the old one no longer works after a reset.
        let newKey = Array(repeating: UInt8(0x5A), count: 16)
        #expect(h.apdu(0xFF, 0xFF, 0xFF, [0x08, 0x9B, 0x10] + newKey).sw == 0x9000)
        h.card.reset()
        #expect(h.authenticateManagementKey() != 0x9000)
        #expect(h.card.state.managementKeyAlgorithm == .aes128 && h.card.state.managementKey == newKey)
    }

    @Test(
        "OpenSC's random source (GENERAL AUTHENTICATE 9B, P1 00, 7C{81 00}) answers 8 random bytes and authenticates nothing"
    )
    func randomSource() throws {
        let h = Harness()
        let first = h.apdu(0x87, 0x00, 0x9B, [0x7C, 0x02, 0x81, 0x00])
        let second = h.apdu(0x87, 0x00, 0x9B, [0x7C, 0x02, 0x81, 0x00])
        #expect(first.sw == 0x9000 && first.data.count == 12 && first.data != second.data)
        #expect(h.generate(.authentication) == nil)
    }

    @Test(
        "ECDSA with 9a needs the PIN once; 9c needs it before every signature; signatures verify; ECDH with 9d agrees with the peer's side"
    )
    func signAndAgree() throws {
        let h = Harness()
        #expect(h.authenticateManagementKey() == 0x9000)
        let authKey = try #require(h.generate(.authentication))
        let signKey = try #require(h.generate(.signature))
        let agreeKey = try #require(h.generate(.keyManagement))
        let hash = Array(SHA256.hash(data: Array("quote".utf8)))
        let request = TLV.encode(0x7C, TLV.encode(0x82, []) + TLV.encode(0x81, hash))
        #expect(h.apdu(0x87, 0x11, 0x9A, request).sw == 0x6982)
        #expect(h.verify("123456") == 0x9000)
        for slot in [PIVSlot.authentication, .authentication, .signature] {
            let reply = h.apdu(0x87, 0x11, slot.rawValue, request)
            #expect(reply.sw == 0x9000)
            let der = try #require(try TLV.parse(TLV.parse(reply.data)[0].value).value(0x82))
            let signature = try P256.Signing.ECDSASignature(derRepresentation: der)
            let key = slot == .signature ? signKey : authKey
            #expect(key.isValidSignature(signature, for: try #require(PrehashedDigest(hash))))
        }
        #expect(h.apdu(0x87, 0x11, 0x9C, request).sw == 0x6982, "PIN-always: the 9c signature spent the PIN")

        #expect(h.verify("123456") == 0x9000)
        let peer = P256.KeyAgreement.PrivateKey()
        let agree = h.apdu(
            0x87,
            0x11,
            0x9D,
            TLV.encode(0x7C, TLV.encode(0x82, []) + TLV.encode(0x85, Array(peer.publicKey.x963Representation)))
        )
        #expect(agree.sw == 0x9000)
        let secret = try TLV.parse(TLV.parse(agree.data)[0].value).value(0x82)
        let expected = try peer.sharedSecretFromKeyAgreement(
            with: P256.KeyAgreement.PublicKey(x963Representation: agreeKey.x963Representation)
        )
        #expect(secret == expected.withUnsafeBytes { Array($0) })
    }

    @Test(
        "a 1,000-byte object: PUT DATA in chained parts, GET DATA in 256-byte parts with 61xx, Le honoured, and a pending answer dropped by the next command"
    )
    func chaining() throws {
        let h = Harness()
        #expect(h.authenticateManagementKey() == 0x9000)
        let certificate = (0..<1000).map { UInt8($0 % 251) }
        let put = TLV.encode(0x5C, [0x5F, 0xC1, 0x05]) + TLV.encode(0x53, TLV.encode(0x70, certificate))
        var parts = stride(from: 0, to: put.count, by: 255).map { Array(put[$0..<min($0 + 255, put.count)]) }
        let last = parts.removeLast()
        for part in parts { #expect(h.apdu(0xDB, 0x3F, 0xFF, part, cla: 0x10).sw == 0x9000) }
        #expect(h.apdu(0xDB, 0x3F, 0xFF, last).sw == 0x9000)

        let get: [UInt8] = [0x5C, 0x03, 0x5F, 0xC1, 0x05]
        var reply = h.apdu(0xCB, 0x3F, 0xFF, get)
        var whole = reply.data
        #expect(reply.data.count == 256 && reply.sw >> 8 == 0x61)
        while reply.sw >> 8 == 0x61 {
            reply = h.apdu(0xC0, 0x00, 0x00, le: UInt8(reply.sw & 0xFF))
            #expect(reply.data.count <= 256)
            whole += reply.data
        }
        #expect(reply.sw == 0x9000)
        #expect(whole == TLV.encode(0x53, TLV.encode(0x70, certificate)))

        // OpenSC's probe: Le 8, then another command.
        let probe = h.apdu(0xCB, 0x3F, 0xFF, get, le: 0x08)
        #expect(probe.data.count == 8 && probe.sw >> 8 == 0x61)
        #expect(h.apdu(0xCB, 0x3F, 0xFF, [0x5C, 0x01, 0x7E]).sw == 0x9000)
        #expect(h.apdu(0xC0, 0x00, 0x00, le: 0).sw == 0x6985, "the abandoned answer is gone")
    }

    @Test("a chain longer than 16 KiB is refused; objects past 4 KiB do not fit; PIN-protected objects need the PIN")
    func bounds() {
        let h = Harness()
        #expect(h.authenticateManagementKey() == 0x9000)
        for _ in 0..<70 { h.apdu(0xDB, 0x3F, 0xFF, Array(repeating: 0, count: 250), cla: 0x10) }
        #expect(h.apdu(0xDB, 0x3F, 0xFF, [0]).sw == 0x6700)
        let big = TLV.encode(0x5C, [0x5F, 0xC1, 0x09]) + TLV.encode(0x53, Array(repeating: 1, count: 5000))
        #expect(
            h.send([0x00, 0xDB, 0x3F, 0xFF, 0x00, UInt8(big.count >> 8), UInt8(big.count & 0xFF)] + big).sw == 0x6A84
        )
        let small = TLV.encode(0x5C, [0x5F, 0xC1, 0x09]) + TLV.encode(0x53, [1, 2, 3])
        #expect(h.apdu(0xDB, 0x3F, 0xFF, small).sw == 0x9000)
        #expect(h.apdu(0xCB, 0x3F, 0xFF, [0x5C, 0x03, 0x5F, 0xC1, 0x09]).sw == 0x6982)
        #expect(h.verify("123456") == 0x9000)
        #expect(h.apdu(0xCB, 0x3F, 0xFF, [0x5C, 0x03, 0x5F, 0xC1, 0x09]).data == TLV.encode(0x53, [1, 2, 3]))
    }

    @Test("garbage APDUs get a status word, never a crash, never more than 256 bytes of data")
    func garbage() {
        let h = Harness()
        var generator = SeededRandom.forTest()
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...300, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if count > 1, Bool.random(using: &generator) { bytes[0] = 0 }
            let response = h.card.respond(to: bytes)
            #expect(response.count >= 2 && response.count <= 258)
        }
    }

    @Test("the state survives a restart in its sealed file, and a changed byte in it is refused")
    func sealedState() throws {
        let directory = try TemporaryDirectory("vcard")
        let path = directory.file("card")
        let (file, fresh) = try PIVStateFile.openOrCreate(directory: path)
        let card = PIVCard(state: fresh, persist: file.save)
        _ = card.respond(to: [0x00, 0x20, 0x00, 0x80, 0x08] + PIVCardState.padded(Array("999999".utf8)))
        let (_, reopened) = try PIVStateFile.openOrCreate(directory: path)
        #expect(reopened == card.state && reopened.pinTriesLeft == 2 && reopened.serial == fresh.serial)
        let sealed = path + "/store.sealed"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: sealed))
        bytes[bytes.count - 5] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: sealed))
        #expect(throws: PIVStateFile.Failure.self) { try PIVStateFile.openOrCreate(directory: path) }
    }
}
