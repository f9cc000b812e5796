import Crypto
import Foundation
import Testing
import UkeyPCSC
import UkeyPIV
import UkeyTesting

extension CardPeerTests {
    /// ukey's own PC/SC client (`UkeyPCSC`) against ukey-vcard through a real pcscd.
    @Suite("UkeyPCSC: the PIV client through pcscd")
    struct PIVClientTests {
        let client = PIVClient(card: SmartCard(reader: VirtualCardPeer.readers[0]))

        @Test(
            "PIN answers: wrong counts down, right is accepted, the PUK unblocks; a PIN longer than 8 is refused before the card sees it"
        )
        func pins() async throws {
            try VirtualCardPeer.insertCard(fresh: true)
            #expect(try await client.verify(nil) == .wrong(triesLeft: 3))
            #expect(try await client.verify("000000") == .wrong(triesLeft: 2))
            #expect(try await client.verify("123456") == .accepted)
            for expected in [PIVClient.PINResult.wrong(triesLeft: 2), .wrong(triesLeft: 1), .blocked, .blocked] {
                #expect(try await client.verify("999999") == expected)
            }
            #expect(try await client.unblock(puk: "12345678", newPIN: "7654321") == .accepted)
            #expect(try await client.verify("7654321") == .accepted)
            await #expect(throws: CardError.self) { try await client.verify("123456789") }
        }

        @Test(
            "keys made on the card sign hashes swift-crypto verifies, agree with a software key, and carry the certificate written for them"
        )
        func keys() async throws {
            try VirtualCardPeer.insertCard(fresh: true)
            let signKey = try await client.generate(slot: .signature, managementKey: .factoryDefault)
            let hash = Array(SHA256.hash(data: Array("a quote".utf8)))
            let der = try await client.sign(hash, slot: .signature, pin: "123456")
            #expect(
                signKey.isValidSignature(
                    try P256.Signing.ECDSASignature(derRepresentation: der),
                    for: SHA256.hash(data: Array("a quote".utf8))
                )
            )
            await #expect(throws: CardError.self, "PIN-always: no signature without the PIN") {
                try await client.sign(hash, slot: .signature, pin: nil)
            }

            let agreeKey = try await client.generate(slot: .keyManagement, managementKey: .factoryDefault)
            let peer = P256.KeyAgreement.PrivateKey()
            let secret = try await client.agree(
                with: Array(peer.publicKey.x963Representation),
                slot: .keyManagement,
                pin: "123456"
            )
            let expected = try peer.sharedSecretFromKeyAgreement(
                with: P256.KeyAgreement.PublicKey(x963Representation: agreeKey.x963Representation)
            )
            #expect(secret == expected.withUnsafeBytes { Array($0) })

            let certificate = (0..<700).map { UInt8($0 % 256) }
            #expect(try await client.certificate(slot: .signature) == nil)
            try await client.putCertificate(certificate, slot: .signature, managementKey: .factoryDefault)
            #expect(
                try await client.certificate(slot: .signature) == certificate,
                "700 bytes: chained out, read back through GET RESPONSE"
            )
            let wrongKey = ManagementKey(algorithm: .tripleDES, bytes: Array(repeating: 7, count: 24))
            await #expect(throws: CardError.self) {
                try await client.generate(slot: .authentication, managementKey: wrongKey)
            }

            let random = try await client.random(count: 100, managementKey: .tripleDES)
            #expect(random.count == 100 && Set(random).count > 40)
            #expect(try await client.serial() != nil)
        }

        @Test(
            "a card pulled mid-run: the next operation fails as unavailable (nothing done), and the same client works again once it is back"
        )
        func pulledAndBack() async throws {
            try VirtualCardPeer.insertCard(fresh: true)
            #expect(try await client.verify(nil) == .wrong(triesLeft: 3))
            try VirtualCardPeer.removeCard()
            await #expect {
                try await client.verify("123456")
            } throws: { error in
                (error as? CardError)?.kind == .unavailable
            }
            try VirtualCardPeer.insertCard()
            #expect(try await client.verify("123456") == .accepted)
            #expect(try await client.verify(nil) == .accepted)
        }

        @Test("the PC/SC constants ukey declares are pcsclite.h's")
        func constants() throws {
            let header = try String(contentsOfFile: "/usr/include/PCSC/pcsclite.h", encoding: .utf8)
            for (name, value) in [
                ("SCARD_SCOPE_SYSTEM", "0x0002"), ("SCARD_PROTOCOL_T1", "0x0002"), ("SCARD_SHARE_SHARED", "0x0002"),
                ("SCARD_LEAVE_CARD", "0x0000"),
                ("SCARD_E_NO_SERVICE", "((LONG)0x8010001D)"), ("SCARD_W_REMOVED_CARD", "((LONG)0x80100069)"),
                ("SCARD_E_NO_SMARTCARD", "((LONG)0x8010000C)"),
            ] {
                let line = header.split(separator: "\n").first { $0.hasPrefix("#define \(name)") }
                #expect(
                    line?.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst(2).first.map(String.init)
                        == value,
                    "\(name)"
                )
            }
        }
    }
}
