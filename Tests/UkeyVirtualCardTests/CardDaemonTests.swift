import Crypto
import Foundation
import Testing
import UkeyClient
import UkeyCore
import UkeyPCSC
import UkeyPIV
import UkeyTesting
import UkeyVarlink
import X509

extension CardPeerTests {
    /// ukeyd with its keys, users and store on the card (keys = users = store = "pcsc"), the card
    /// enrolled by ukeyctl as an operator would.
    @Suite("ukeyd on the card: keys, users and store")
    struct CardDaemonTests {
        static let ukeyctl = PackagePaths.builtProduct("ukeyctl")
        static let signer = PackagePaths.root() + "/keys/demo/policy-signer.TEST-ONLY.pem"

        static let keysReader = VirtualCardPeer.keysReader
        static let aliceReader = VirtualCardPeer.userReaders["alice"]!

        /// ukeyd's keys card's PIN as its pin file holds it (0600), in the peer's directory.
        static func writeKeysPIN(_ text: String) throws -> String {
            let pinFile = try VirtualCardPeer.requireDirectory() + "/daemon-card.pin"
            try? FileManager.default.removeItem(atPath: pinFile)
            #expect(
                FileManager.default.createFile(
                    atPath: pinFile,
                    contents: Data(text.utf8),
                    attributes: [.posixPermissions: 0o600]
                )
            )
            return pinFile
        }

        /// Fresh cards, enrolled: ukeyd's keys card in the first reader (its PIN in a 0600 file),
        /// alice's own in the second; a ukeyd on the first, initialised, with alice.
        static func start(addAlice: Bool = true) throws -> (daemon: TestDaemon, pinFile: String) {
            try VirtualCardPeer.insertCard(fresh: true)
            let enrolled = try ExternalTool.run(ukeyctl, ["card", "enroll", "--reader", keysReader])
            guard enrolled.status == 0 else {
                throw VirtualCardPeer.Unavailable(description: "ukeyctl card enroll: \(enrolled.stderr)")
            }
            try VirtualCardPeer.insertCard(slot: 1, fresh: true)
            let alices = try ExternalTool.run(ukeyctl, ["card", "enroll", "--reader", aliceReader, "--user", "alice"])
            guard alices.status == 0 else {
                throw VirtualCardPeer.Unavailable(description: "ukeyctl card enroll --user alice: \(alices.stderr)")
            }
            let pinFile = try Self.writeKeysPIN("123456\n")
            let daemon = try TestDaemon(
                arguments: [
                    "--keys", "pcsc", "--users", "pcsc", "--store", "pcsc", "--pcsc-reader", keysReader,
                    "--pcsc-pin-file", pinFile, "--allow-demo-keys",
                ],
                backend: .soft
            )
            try daemon.call(
                "io.ukey.Admin.Initialize",
                ["soPin": "so-secret-42", "policySigner": .string(try String(contentsOfFile: signer, encoding: .utf8))]
            )
            if addAlice {
                try daemon.call("io.ukey.Admin.AddUser", ["user": "alice", "pin": "123456", "roles": ["office"]])
            }
            return (daemon, pinFile)
        }

        static func refusal(_ name: String) -> @Sendable (any Error) -> Bool {
            { error in (error as? VarlinkError)?.name == name }
        }

        @Test(
            "Login goes through the card's PIN: wrong counts down on the card (yubico-piv-tool sees it), right opens a session, an unknown user is refused"
        )
        func login() throws {
            let (daemon, _) = try Self.start()
            defer { daemon.stop() }
            #expect {
                try daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "000000"])
            } throws: { error in
                (error as? VarlinkError)?.name == "io.ukey.Auth.BadPin"
                    && (error as? VarlinkError)?.parameters["retriesLeft"] == .int(2)
            }
            #expect(
                try daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "123456"])["session"]?.stringValue != nil
            )
            // The counter is the card's: yubico-piv-tool sees what Login did.
            _ = try? daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "000001"])
            let status = try ExternalTool("yubico-piv-tool").run(["-r", Self.aliceReader, "-a", "status"])
            #expect(status.stdout.contains("PIN tries left:\t2"), "\(status.stdout)")
            #expect(throws: (any Error).self) {
                try daemon.call("io.ukey.Auth.Login", ["user": "mallory", "pin": "123456"])
            }
        }

        @Test(
            "Login proves the card, not only the PIN: a card whose 9a key is not the one the user CA certified is refused with the right PIN; a user without a card of their own cannot be added"
        )
        func loginProvesTheKey() throws {
            let (daemon, _) = try Self.start()
            defer { daemon.stop() }
            let session = try daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "123456"])
            let certificate = try #require(session["certificate"]?.stringValue)
            #expect(certificate.contains("BEGIN CERTIFICATE"))
            // Token.Sign as alice: her card's 9a key signs (ukeyd has no copy of it); the signature
            // verifies with the certificate Login returned.
            let digest = Array(SHA256.hash(data: Array("a contract".utf8)))
            let signed = try daemon.call(
                "io.ukey.Token.Sign",
                ["key": "alice", "digest": .string(Data(digest).base64EncodedString()), "session": session["session"]!]
            )
            let der = try #require(signed["signature"]?.stringValue.flatMap { Data(base64Encoded: $0) })
            let key = try #require(P256.Signing.PublicKey(try Certificate(pemEncoded: certificate).publicKey))
            #expect(
                key.isValidSignature(
                    try P256.Signing.ECDSASignature(derRepresentation: der),
                    for: SHA256.hash(data: SigningContext.tokenSignMessage(digest: digest))
                )
            )
            // No card names carol in its 9a certificate: she cannot be added.
            #expect {
                try daemon.call("io.ukey.Admin.AddUser", ["user": "carol", "pin": "123456", "roles": ["office"]])
            } throws: { error in
                (error as? VarlinkError)?.parameters["reason"]?.stringValue?.contains("enrol the user's card first")
                    == true
            }
            // New keys on the same card, same PIN, same name: not the card alice was certified with.
            #expect(
                try ExternalTool.run(Self.ukeyctl, ["card", "enroll", "--reader", Self.aliceReader, "--user", "alice"])
                    .status == 0
            )
            #expect { try daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "123456"]) } throws: { error in
                (error as? VarlinkError)?.parameters["reason"]?.stringValue?.contains("not the one certified for alice")
                    == true
            }
        }

        @Test(
            "quotes and audit checkpoints are signed by the card's 9c key: openssl verifies the quote against the certificate, which chains to the root CA; ukeyctl verifies the audit log offline"
        )
        func signaturesByTheCard() throws {
            let (daemon, _) = try Self.start()
            let work = try TemporaryDirectory("card-quote")
            let reply = try daemon.call(
                "io.ukey.Boot.Quote",
                ["nonce": .string(Data("a verifier's nonce".utf8).base64EncodedString())]
            )
            #expect(reply["format"] == "ukey-v1")
            let quoteText = try #require(reply["quote"]?.stringValue)
            let signatureText = try #require(reply["signature"]?.stringValue)
            try work.write("quote.bin", Array(try #require(Data(base64Encoded: quoteText))))
            try work.write("quote.sig", Array(try #require(Data(base64Encoded: signatureText))))
            try work.write("att.pem", Array(try #require(reply["certificate"]?.stringValue).utf8))
            let openssl = ExternalTool("openssl")
            let key = try openssl.run(["x509", "-in", work.file("att.pem"), "-pubkey", "-noout"])
            try work.write("att.pub", Array(key.stdout.utf8))
            #expect(
                try openssl.run([
                    "dgst", "-sha256", "-verify", work.file("att.pub"), "-signature", work.file("quote.sig"),
                    work.file("quote.bin"),
                ]).stdout.contains("Verified OK")
            )

            // The certified key is the card's own 9c key (its self-signed enrolment certificate).
            let client = PIVClient(card: SmartCard(reader: Self.keysReader))
            let cardCertificate = try #require(try client.certificateBlocking(slot: .signature))
            try work.write("card9c.der", cardCertificate)
            let cardKey = try openssl.run([
                "x509", "-inform", "DER", "-in", work.file("card9c.der"), "-pubkey", "-noout",
            ])
            #expect(cardKey.stdout == key.stdout && !key.stdout.isEmpty)

            let chain = try #require(
                try daemon.call("io.ukey.Token.Certificate", ["name": "token-keys-ca"])["pem"]?.stringValue
            )
            let root = try #require(
                try daemon.call("io.ukey.Token.Certificate", ["name": "root-ca"])["pem"]?.stringValue
            )
            try work.write("chain.pem", Array(chain.utf8))
            try work.write("root.pem", Array(root.utf8))
            let verified = try openssl.run([
                "verify", "-CAfile", work.file("root.pem"), "-untrusted", work.file("chain.pem"), work.file("att.pem"),
            ])
            #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")

            let audit = try #require(
                try daemon.call("io.ukey.Token.Certificate", ["name": "audit"])["pem"]?.stringValue
            )
            try work.write("audit.pem", Array((audit + chain).utf8))
            daemon.stop()
            let offline = try ExternalTool.run(
                Self.ukeyctl,
                [
                    "audit", "verify", "--log", daemon.stateDirectory + "/audit.log", "--cert", work.file("audit.pem"),
                    "--root-ca", work.file("root.pem"),
                ]
            )
            #expect(offline.status == 0 && offline.stdout.contains("verified"), "\(offline.stdout) \(offline.stderr)")
        }

        @Test(
            "the card pulled mid-run: Token.Unavailable, not a crash; back in, it works again; ukeyd will not start without it, nor with another card, and says why"
        )
        func pulledAndOtherCard() throws {
            let (daemon, _) = try Self.start()
            try VirtualCardPeer.removeCard()
            #expect { try daemon.call("io.ukey.Token.Random", ["bytes": 16]) } throws: {
                Self.refusal("io.ukey.Token.Unavailable")($0)
            }
            #expect {
                try daemon.call(
                    "io.ukey.Boot.Quote",
                    ["nonce": .string(Data("n0nce-n0nce-n0nce".utf8).base64EncodedString())]
                )
            } throws: { Self.refusal("io.ukey.Token.Unavailable")($0) }
            #expect(try daemon.call("org.varlink.service.GetInfo")["vendor"] != nil, "the daemon stays up")
            try VirtualCardPeer.insertCard()
            #expect(try daemon.call("io.ukey.Token.Random", ["bytes": 16])["data"] != nil)

            daemon.stop()
            try VirtualCardPeer.removeCard()
            #expect(throws: TestDaemonError.self) { try daemon.start() }
            #expect(daemon.exitStatus == 1)
            #expect(daemon.log().contains("the sealed store opens only with that card"), "\(daemon.log().suffix(400))")
            try VirtualCardPeer.insertCard()
            try daemon.start()
            #expect(try daemon.call("io.ukey.Token.Random", ["bytes": 16])["data"] != nil)
            daemon.stop()

            // Another card (fresh, enrolled anew): its 9d key cannot unwrap this store.
            try VirtualCardPeer.insertCard(fresh: true)
            #expect(try ExternalTool.run(Self.ukeyctl, ["card", "enroll", "--reader", Self.keysReader]).status == 0)
            #expect(throws: TestDaemonError.self) { try daemon.start() }
            #expect(daemon.log().contains("does not unseal with pcsc (card)"), "\(daemon.log().suffix(400))")
        }

        @Test(
            "with the store sealed to a TPM instead, another card is still refused, by its serial and keys, and the message names both"
        )
        func otherCardByIdentity() throws {
            try VirtualCardPeer.insertCard(fresh: true)
            #expect(try ExternalTool.run(Self.ukeyctl, ["card", "enroll", "--reader", Self.keysReader]).status == 0)
            let pinFile = try Self.writeKeysPIN("123456")
            let tpm = try SoftwareTPM()
            let daemon = try TestDaemon(
                arguments: [
                    "--keys", "pcsc", "--store", "tpm", "--tcti", tpm.tcti, "--pcsc-reader", Self.keysReader,
                    "--pcsc-pin-file", pinFile, "--allow-demo-keys",
                ],
                backend: .soft
            )
            try daemon.call(
                "io.ukey.Admin.Initialize",
                [
                    "soPin": "so-secret-42",
                    "policySigner": .string(try String(contentsOfFile: Self.signer, encoding: .utf8)),
                ]
            )
            #expect(try daemon.call("io.ukey.Token.Info")["roles"]?["store"] == "tpm")
            daemon.stop()
            try VirtualCardPeer.insertCard(fresh: true)
            #expect(try ExternalTool.run(Self.ukeyctl, ["card", "enroll", "--reader", Self.keysReader]).status == 0)
            #expect(throws: TestDaemonError.self) { try daemon.start() }
            #expect(
                daemon.log().contains("is not the one this token was initialised with"),
                "\(daemon.log().suffix(400))"
            )

            // A PIN file others can read is refused before the card is used.
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: pinFile)
            #expect(throws: TestDaemonError.self) { try daemon.start() }
            #expect(daemon.log().contains("it must be 0600"), "\(daemon.log().suffix(400))")
        }

        @Test(
            "ukeyctl card certify: on alice's card the user CA certifies its 9a key from a CSR the card signed; on ukeyd's keys card the token-keys CA's certificate of 9c goes onto it, and --user there is refused; openssl verifies both chains and a pkcs11-tool signature; ukeyd still starts on the card"
        )
        func certify() throws {
            let (daemon, _) = try Self.start()
            let certified = try ExternalTool.run(
                Self.ukeyctl,
                ["card", "certify", "--user", "alice", "--reader", Self.aliceReader, "--socket", daemon.socketPath]
            )
            #expect(certified.status == 0, "\(certified.stdout) \(certified.stderr)")
            #expect(certified.stdout.contains("slot 9a: CN=alice"), "\(certified.stdout)")
            let keys = try ExternalTool.run(
                Self.ukeyctl,
                ["card", "certify", "--reader", Self.keysReader, "--socket", daemon.socketPath]
            )
            #expect(keys.status == 0 && keys.stdout.contains("slot 9c: "), "\(keys.stdout) \(keys.stderr)")
            let asUser = try ExternalTool.run(
                Self.ukeyctl,
                ["card", "certify", "--user", "alice", "--reader", Self.keysReader, "--socket", daemon.socketPath]
            )
            #expect(
                asUser.status != 0 && asUser.stderr.contains("holds ukeyd's keys"),
                "\(asUser.stdout) \(asUser.stderr)"
            )
            let work = try TemporaryDirectory("card-certify")
            func pem(_ name: String) throws -> String {
                try #require(try daemon.call("io.ukey.Token.Certificate", ["name": .string(name)])["pem"]?.stringValue)
            }
            try work.write("root.pem", Array(try pem("root-ca").utf8))
            try work.write("user-ca.pem", Array(try pem("user-ca").utf8))
            try work.write("token-keys-ca.pem", Array(try pem("token-keys-ca").utf8))
            try work.write(
                "9a.der",
                try #require(
                    try PIVClient(card: SmartCard(reader: Self.aliceReader)).certificateBlocking(slot: .authentication)
                )
            )
            try work.write(
                "9c.der",
                try #require(
                    try PIVClient(card: SmartCard(reader: Self.keysReader)).certificateBlocking(slot: .signature)
                )
            )
            let openssl = ExternalTool("openssl")
            for (slot, ca) in [("9a", "user-ca.pem"), ("9c", "token-keys-ca.pem")] {
                _ = try openssl.run([
                    "x509", "-inform", "DER", "-in", work.file("\(slot).der"), "-out", work.file("\(slot).pem"),
                ])
                let verified = try openssl.run([
                    "verify", "-CAfile", work.file("root.pem"), "-untrusted", work.file(ca), work.file("\(slot).pem"),
                ])
                #expect(verified.status == 0, "slot \(slot): \(verified.stdout) \(verified.stderr)")
            }
            // The user's certificate is the one ukeyd answers for alice, and her card's key signs for it.
            let alice = try pem("alice")
            try work.write("alice.pem", Array(alice.utf8))
            let fromCard = try openssl.run(["x509", "-in", work.file("9a.pem"), "-noout", "-fingerprint"]).stdout
            #expect(
                fromCard == (try openssl.run(["x509", "-in", work.file("alice.pem"), "-noout", "-fingerprint"]).stdout)
            )
            try Data("signed by alice's card".utf8).write(to: URL(fileURLWithPath: work.file("data")))
            let signed = try ExternalTool("pkcs11-tool").run([
                "--module", VirtualCardInteropTests.pkcs11Module, "--token-label", "alice", "--login", "--pin",
                "123456", "--sign", "-m", "ECDSA-SHA256",
                "--id", "01", "-i", work.file("data"), "-o", work.file("sig"), "--signature-format", "openssl",
            ])
            #expect(signed.status == 0, "\(signed.stderr)")
            _ = try openssl.run(["x509", "-in", work.file("9a.pem"), "-pubkey", "-noout", "-out", work.file("9a.pub")])
            #expect(
                try openssl.run([
                    "dgst", "-sha256", "-verify", work.file("9a.pub"), "-signature", work.file("sig"),
                    work.file("data"),
                ]).stdout.contains("Verified OK")
            )
            daemon.stop()
            try daemon.start()
            #expect(try daemon.call("io.ukey.Token.Random", ["bytes": 8])["data"] != nil)
            daemon.stop()
        }

        @Test(
            "ukeyd's keys card is no user's: with the card enrolled for alice as well (one card for both, as the suites' fixture once had it), pkcs11-tool with its PIN signs a ukey-v1 quote body by 9c that verifies under ukeyd's attestation certificate; so AddUser with that card, a CSR of its key, and certify --user on it are refused, naming why; with a card of her own, her PIN does not open ukeyd's"
        )
        func keysCardIsNoUsers() throws {
            // One card for ukeyd's keys and for alice: enrolled with --user alice, named as ukeyd's card.
            try VirtualCardPeer.insertCard(fresh: true)
            #expect(
                try ExternalTool.run(Self.ukeyctl, ["card", "enroll", "--reader", Self.keysReader, "--user", "alice"])
                    .status == 0
            )
            try VirtualCardPeer.removeCard(slot: 1)
            let pinFile = try Self.writeKeysPIN("123456\n")
            let daemon = try TestDaemon(
                arguments: [
                    "--keys", "pcsc", "--users", "pcsc", "--store", "pcsc", "--pcsc-reader", Self.keysReader,
                    "--pcsc-pin-file", pinFile, "--allow-demo-keys",
                ],
                backend: .soft
            )
            defer { daemon.stop() }
            try daemon.call(
                "io.ukey.Admin.Initialize",
                [
                    "soPin": "so-secret-42",
                    "policySigner": .string(try String(contentsOfFile: Self.signer, encoding: .utf8)),
                ]
            )

            // The attack this rule stops: whoever knows the card's PIN makes its 9c key sign what
            // ukeyd's attestation certificate vouches for (a quote of registers never extended).
            let work = try TemporaryDirectory("keys-card")
            let attestation = try #require(
                try daemon.call("io.ukey.Token.Certificate", ["name": "attestation"])["pem"]?.stringValue
            )
            try work.write("att.pem", Array(attestation.utf8))
            try work.write("forged", Array("ukey-v1 quote: every register as the verifier wants it".utf8))
            let forged = try ExternalTool("pkcs11-tool").run([
                "--module", VirtualCardInteropTests.pkcs11Module, "--token-label", "alice", "--login", "--pin",
                "123456", "--sign",
                "-m", "ECDSA-SHA256", "--id", "02", "-i", work.file("forged"), "-o", work.file("forged.sig"),
                "--signature-format", "openssl",
            ])
            #expect(forged.status == 0, "\(forged.stderr)")
            let openssl = ExternalTool("openssl")
            _ = try openssl.run([
                "x509", "-in", work.file("att.pem"), "-pubkey", "-noout", "-out", work.file("att.pub"),
            ])
            #expect(
                try openssl.run([
                    "dgst", "-sha256", "-verify", work.file("att.pub"), "-signature", work.file("forged.sig"),
                    work.file("forged"),
                ]).stdout.contains("Verified OK")
            )

            // So the card cannot become alice's, by any of the three ways in.
            #expect {
                try daemon.call("io.ukey.Admin.AddUser", ["user": "alice", "pin": "123456", "roles": ["office"]])
            } throws: { error in
                (error as? VarlinkError)?.parameters["reason"]?.stringValue?.contains("holds ukeyd's keys") == true
            }
            #expect(throws: (any Error).self, "nothing of alice is kept") {
                try daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "123456"])
            }
            let certify = try ExternalTool.run(
                Self.ukeyctl,
                ["card", "certify", "--user", "alice", "--reader", Self.keysReader, "--socket", daemon.socketPath]
            )
            #expect(
                certify.status != 0 && certify.stderr.contains("holds ukeyd's keys"),
                "\(certify.stdout) \(certify.stderr)"
            )
            daemon.stop()

            // With users in the store (users = "soft"), a CSR the keys card signed with its 9a key
            // cannot make that key a user's either.
            let softUsers = try TestDaemon(
                arguments: [
                    "--keys", "pcsc", "--store", "pcsc", "--pcsc-reader", Self.keysReader, "--pcsc-pin-file", pinFile,
                    "--allow-demo-keys",
                ],
                backend: .soft
            )
            defer { softUsers.stop() }
            try softUsers.call(
                "io.ukey.Admin.Initialize",
                [
                    "soPin": "so-secret-42",
                    "policySigner": .string(try String(contentsOfFile: Self.signer, encoding: .utf8)),
                ]
            )
            try softUsers.call("io.ukey.Admin.AddUser", ["user": "alice", "pin": "alice-p1", "roles": ["office"]])
            let client = PIVClient(card: SmartCard(reader: Self.keysReader))
            let enrolled = try Certificate(
                derEncoded: try #require(try client.certificateBlocking(slot: .authentication))
            )
            let cardKey = CardKey(
                client: client,
                slot: .authentication,
                pin: "123456",
                publicKey: try #require(P256.Signing.PublicKey(enrolled.publicKey))
            )
            let csr = try CertificateSigningRequest(
                version: .v1,
                subject: try DistinguishedName { CommonName("alice") },
                privateKey: Certificate.PrivateKey(cardKey),
                attributes: CertificateSigningRequest.Attributes(),
                signatureAlgorithm: .ecdsaWithSHA256
            ).serializeAsPEM().pemString
            #expect {
                try softUsers.call("io.ukey.Admin.IssueCertificate", ["user": "alice", "csr": .string(csr)])
            } throws: { error in
                (error as? VarlinkError)?.parameters["reason"]?.stringValue?.contains("on ukeyd's keys card") == true
            }
            softUsers.stop()

            // A card of alice's own: her PIN opens hers, not ukeyd's (whose PIN only ukeyd's pin file has).
            try VirtualCardPeer.insertCard(slot: 1, fresh: true)
            #expect(
                try ExternalTool.run(Self.ukeyctl, ["card", "enroll", "--reader", Self.aliceReader, "--user", "alice"])
                    .status == 0
            )
            #expect(
                try ExternalTool("yubico-piv-tool").run([
                    "-r", Self.keysReader, "-a", "change-pin", "-P", "123456", "-N", "keys-p1",
                ]).status == 0
            )
            let refused = try ExternalTool("pkcs11-tool").run([
                "--module", VirtualCardInteropTests.pkcs11Module, "--slot-index", "0", "--login", "--pin", "123456",
                "--sign",
                "-m", "ECDSA-SHA256", "--id", "02", "-i", work.file("forged"), "-o", work.file("refused.sig"),
                "--signature-format", "openssl",
            ])
            #expect(refused.status != 0, "alice's PIN opened ukeyd's keys card")
        }

        @Test(
            "ukeyctl card set-management-key: after it, the factory key no longer generates keys and the new one does"
        )
        func managementKey() throws {
            try VirtualCardPeer.insertCard(fresh: true)
            let key = "00112233445566778899aabbccddeeff"
            let set = try ExternalTool.run(
                Self.ukeyctl,
                ["card", "set-management-key", "--reader", Self.keysReader, "--new", key, "--new-algorithm", "aes128"]
            )
            #expect(set.status == 0, "\(set.stderr)")
            #expect(try ExternalTool.run(Self.ukeyctl, ["card", "enroll", "--reader", Self.keysReader]).status != 0)
            let enrolled = try ExternalTool.run(
                Self.ukeyctl,
                [
                    "card", "enroll", "--reader", Self.keysReader, "--management-key", key, "--management-algorithm",
                    "aes128",
                ]
            )
            #expect(enrolled.status == 0, "\(enrolled.stderr)")
            #expect(
                try ExternalTool.run(
                    Self.ukeyctl,
                    ["card", "set-management-key", "--reader", Self.keysReader, "--new", "zz"]
                ).status == 2,
                "a malformed key is a usage error"
            )
        }
    }
}
