import Crypto
import Foundation
import Testing
import UkeyCore
import UkeyTesting
import UkeyToken
import X509

/// Every signature and certificate the token makes, checked by the openssl CLI.
@Suite("Soft token: quotes, certificates and signatures (checked by openssl), registers, the device key")
struct SoftTokenCryptoTests {
    @Test(
        "openssl accepts the quote signature, and rejects a tampered quote",
        .enabled(if: OpenSSL.tool.shouldRun, "\(OpenSSL.tool.skipReason)")
    )
    func quoteWithOpenSSL() async throws {
        let fixture = try TokenFixture()
        let token = try await fixture.initialize()
        try await token.extend(register: 8, digest: .of(Array("vmm/kernel".utf8)))
        try await token.extend(register: 11, digest: .of(Array("office/overlay".utf8)))
        let nonce = Array("fresh-nonce-0001".utf8)
        let signed = try await token.quote(nonce: nonce, registers: [11, 8], eventLog: .of([1]))
        #expect(signed.format == "ukey-v1")

        let dir = fixture.parent
        try dir.write("quote.bin", signed.quote)
        try dir.write("quote.sig", signed.signature)
        try dir.write("attest.pem", Array(signed.certificatePEM.utf8))
        try OpenSSL.extractPublicKey(certificate: dir.file("attest.pem"), to: dir.file("attest-pub.pem"))
        let ok = try OpenSSL.run([
            "dgst", "-sha256", "-verify", dir.file("attest-pub.pem"), "-signature", dir.file("quote.sig"),
            dir.file("quote.bin"),
        ])
        #expect(ok.status == 0 && ok.stdout.contains("Verified OK"), "\(ok.stdout)\(ok.stderr)")

        var tampered = signed.quote
        tampered[tampered.count - 40] ^= 0x01
        try dir.write("tampered.bin", tampered)
        let bad = try OpenSSL.run([
            "dgst", "-sha256", "-verify", dir.file("attest-pub.pem"), "-signature", dir.file("quote.sig"),
            dir.file("tampered.bin"),
        ])
        #expect(bad.status == 1 && bad.stdout.contains("Verification failure"))

        // The quote says what we extended: registers in order, boot, nonce.
        let parsed = try UkeyQuote(parsing: signed.quote)
        #expect(parsed.nonce == nonce && parsed.bootID == "boot-1" && parsed.bootCounter == 1)
        #expect(parsed.registers.map(\.index) == [8, 11])
        #expect(parsed.registers[0].value == (try await token.read(register: 8, bank: .sha256)).bytes)
    }

    @Test(
        "openssl verifies every certificate the CA issues, and rejects them against another root",
        .enabled(if: OpenSSL.tool.shouldRun, "\(OpenSSL.tool.skipReason)")
    )
    func certificatesWithOpenSSL() async throws {
        let fixture = try TokenFixture()
        let token = try await fixture.initialize()
        _ = try await token.addUserReturningCertificate("alice", pin: "correct-1", roles: ["office"])
        let dir = fixture.parent
        try dir.write("root.pem", Array(try IdentityCA.pem(await token.certificate(named: "root-ca")).utf8))
        try dir.write(
            "sub-cas.pem",
            Array(
                (try IdentityCA.pem(await token.certificate(named: "token-keys-ca"))
                    + IdentityCA.pem(await token.certificate(named: "user-ca"))).utf8
            )
        )
        // Each certificate verifies under its own policy, and only under it: openssl follows the
        // policy along the path (root -> sub-CA -> leaf), so no user passes for a token key.
        for (name, policy) in [("alice", CertificatePolicy.users), ("attestation", .tokenKeys), ("audit", .tokenKeys)] {
            try dir.write("\(name).pem", Array(try IdentityCA.pem(await token.certificate(named: name)).utf8))
            let result = try OpenSSL.run([
                "verify", "-x509_strict", "-CAfile", dir.file("root.pem"), "-untrusted", dir.file("sub-cas.pem"),
                "-policy", policy.oid, "-explicit_policy", dir.file("\(name).pem"),
            ])
            #expect(result.status == 0 && result.stdout.contains(": OK"), "\(name): \(result.stdout)\(result.stderr)")
            let other: CertificatePolicy = policy == .users ? .tokenKeys : .users
            let wrong = try OpenSSL.run([
                "verify", "-CAfile", dir.file("root.pem"), "-untrusted", dir.file("sub-cas.pem"), "-policy", other.oid,
                "-explicit_policy", dir.file("\(name).pem"),
            ])
            #expect(wrong.status != 0, "\(name) must not verify under the \(other.rawValue) policy")
            // Without the sub-CA, nothing chains to the root.
            #expect(try OpenSSL.run(["verify", "-CAfile", dir.file("root.pem"), dir.file("\(name).pem")]).status != 0)
        }
        // The extended key usages name each key's one job.
        let attestationText = try OpenSSL.run([
            "x509", "-in", dir.file("attestation.pem"), "-noout", "-ext", "extendedKeyUsage",
        ]).stdout
        #expect(
            attestationText.contains(KeyPurpose.attestation.extendedKeyUsageOID)
                && !attestationText.contains(KeyPurpose.audit.extendedKeyUsageOID)
        )
        let auditText = try OpenSSL.run(["x509", "-in", dir.file("audit.pem"), "-noout", "-ext", "extendedKeyUsage"])
            .stdout
        #expect(auditText.contains(KeyPurpose.audit.extendedKeyUsageOID))
        // A user identity certificate: CN = the user, digitalSignature, clientAuth; usable for TLS clients.
        let text = try OpenSSL.run(["x509", "-in", dir.file("alice.pem"), "-noout", "-text"]).stdout
        #expect(text.contains("Subject: O = ukey, CN = alice"))
        #expect(text.contains("Digital Signature") && text.contains("TLS Web Client Authentication"))
        #expect(text.contains("CA:FALSE"))
        let purpose = try OpenSSL.run([
            "verify", "-CAfile", dir.file("root.pem"), "-untrusted", dir.file("sub-cas.pem"), "-purpose", "sslclient",
            dir.file("alice.pem"),
        ])
        #expect(purpose.status == 0)
        let rootText = try OpenSSL.run(["x509", "-in", dir.file("root.pem"), "-noout", "-text"]).stdout
        #expect(rootText.contains("CA:TRUE") && rootText.contains("Certificate Sign"))

        // Another token's root does not vouch for this token's users.
        let other = try await TokenFixture().initialize()
        try dir.write("other-root.pem", Array(try IdentityCA.pem(await other.certificate(named: "root-ca")).utf8))
        let foreign = try OpenSSL.run([
            "verify", "-CAfile", dir.file("other-root.pem"), "-untrusted", dir.file("sub-cas.pem"),
            dir.file("alice.pem"),
        ])
        #expect(foreign.status != 0)
        // Serials are unique.
        let serials = try await ["alice", "attestation", "audit", "root-ca", "token-keys-ca", "user-ca"].asyncMap {
            try await token.certificate(named: $0).serialNumberBytes
        }
        #expect(Set(serials).count == 6)
    }

    @Test(
        "a CSR made by openssl is signed for the user's name, and openssl verifies the result",
        .enabled(if: OpenSSL.tool.shouldRun, "\(OpenSSL.tool.skipReason)")
    )
    func csrWithOpenSSL() async throws {
        let fixture = try TokenFixture()
        let token = try await fixture.initialize()
        try await token.addUser("bob", pin: "correct-1", roles: [])
        let dir = fixture.parent
        #expect(
            try OpenSSL.run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", dir.file("card.key")])
                .status == 0
        )
        #expect(
            try OpenSSL.run([
                "req", "-new", "-key", dir.file("card.key"), "-subj", "/CN=someone-else", "-out", dir.file("bob.csr"),
            ]).status == 0
        )
        let csr = try String(contentsOfFile: dir.file("bob.csr"), encoding: .utf8)
        let certificate = try await token.issueCertificate(user: "bob", csrPEM: csr)
        try dir.write("bob.pem", Array(try IdentityCA.pem(certificate).utf8))
        try dir.write("root.pem", Array(try IdentityCA.pem(await token.certificate(named: "root-ca")).utf8))
        try dir.write("user-ca.pem", Array(try IdentityCA.pem(await token.certificate(named: "user-ca")).utf8))
        #expect(
            try OpenSSL.run([
                "verify", "-CAfile", dir.file("root.pem"), "-untrusted", dir.file("user-ca.pem"), "-policy",
                CertificatePolicy.users.oid, "-explicit_policy", dir.file("bob.pem"),
            ]).status == 0
        )
        // The CA writes the user's name, not what the CSR asked for; the key is the card's.
        let text = try OpenSSL.run(["x509", "-in", dir.file("bob.pem"), "-noout", "-subject"]).stdout
        #expect(text.contains("CN = bob") && !text.contains("someone-else"))
        let certKey = try OpenSSL.run(["x509", "-in", dir.file("bob.pem"), "-noout", "-pubkey"]).stdout
        let cardKey = try OpenSSL.run(["ec", "-in", dir.file("card.key"), "-pubout"]).stdout
        #expect(certKey == cardKey)
        // A CSR whose signature is broken is refused.
        var broken = Array(csr.utf8)
        let index = broken.count - 40
        broken[index] = broken[index] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        await #expect(throws: TokenError.self) {
            try await token.issueCertificate(user: "bob", csrPEM: String(decoding: broken, as: UTF8.self))
        }
        await #expect(throws: TokenError(.invalidCSR, "")) {
            try await token.issueCertificate(user: "bob", csrPEM: "not a csr")
        }
    }

    @Test(
        "a user's signature is over the Token.Sign context and the digest, and verifies with openssl and the user's certificate",
        .enabled(if: OpenSSL.tool.shouldRun, "\(OpenSSL.tool.skipReason)")
    )
    func userSignatureWithOpenSSL() async throws {
        let fixture = try TokenFixture()
        let token = try await fixture.initialize()
        try await token.addUser("alice", pin: "correct-1", roles: [])
        let message = Array("contract v2".utf8)
        let digest = Array(SHA256.hash(data: message))
        let signature = try await token.sign(asUser: "alice", digest: digest)
        let dir = fixture.parent
        try dir.write("msg", message)
        try dir.write("signed", SigningContext.tokenSign + digest)
        try dir.write("sig.der", signature)
        try dir.write("alice.pem", Array(try IdentityCA.pem(await token.certificate(named: "alice")).utf8))
        try OpenSSL.extractPublicKey(certificate: dir.file("alice.pem"), to: dir.file("alice-pub.pem"))
        let result = try OpenSSL.run([
            "dgst", "-sha256", "-verify", dir.file("alice-pub.pem"), "-signature", dir.file("sig.der"),
            dir.file("signed"),
        ])
        #expect(result.status == 0 && result.stdout.contains("Verified OK"))
        // Never over the caller's data alone: the context keeps it from passing for a quote's.
        let bare = try OpenSSL.run([
            "dgst", "-sha256", "-verify", dir.file("alice-pub.pem"), "-signature", dir.file("sig.der"), dir.file("msg"),
        ])
        #expect(bare.status == 1)
        await #expect(throws: TokenError(.invalidArgument, "")) {
            try await token.sign(asUser: "alice", digest: [1, 2, 3])
        }
        await #expect(throws: TokenError(.unknownUser, "")) { try await token.sign(asUser: "nobody", digest: digest) }
    }

    @Test("audit checkpoints are signed under their own domain, not as bare data")
    func auditDomainSeparation() async throws {
        let fixture = try TokenFixture()
        let token = try await fixture.initialize()
        let checkpoint = Array("seq=100 hash=abc".utf8)
        let signature = try await token.signAuditCheckpoint(checkpoint)
        let key = try #require(try await token.certificate(named: "audit").p256PublicKey)
        let ecdsa = try P256.Signing.ECDSASignature(derRepresentation: signature)
        #expect(key.isValidSignature(ecdsa, for: SHA256.hash(data: AuditCheckpoint.signingDomain + checkpoint)))
        #expect(!key.isValidSignature(ecdsa, for: SHA256.hash(data: checkpoint)))
    }

    @Test("registers: extend, read, reset advances a durable boot counter; random bytes are bounded")
    func registersAndRandom() async throws {
        let fixture = try TokenFixture()
        var token = try await fixture.initialize()
        let digest = Digest.of(Array("x".utf8))
        try await token.extend(register: 9, digest: digest)
        let expected = HashAlgorithm.sha256.hash([UInt8](repeating: 0, count: 32) + digest.bytes)
        #expect(try await token.read(register: 9, bank: .sha256).bytes == expected)
        #expect(try await token.reset(bootID: "boot-2") == 2)
        #expect(try await token.read(register: 9, bank: .sha256).bytes == [UInt8](repeating: 0, count: 32))
        token = try fixture.reopen()
        #expect(await token.bootCounter == 2)
        #expect(try await token.random(count: 1024).count == 1024)
        await #expect(throws: TokenError(.invalidArgument, "")) { try await token.random(count: 1025) }
        await #expect(throws: TokenError(.invalidArgument, "")) { try await token.extend(register: 24, digest: digest) }
        await #expect(throws: TokenError(.invalidArgument, "")) {
            try await token.quote(nonce: [], registers: [8], eventLog: digest)
        }
        await #expect(throws: TokenError(.invalidArgument, "")) {
            try await token.quote(nonce: [1], registers: [8, 8], eventLog: digest)
        }
    }

    @Test("a token whose device key was swapped or damaged does not open")
    func tamperedDeviceKey() async throws {
        let fixture = try TokenFixture()
        _ = try await fixture.initialize()
        let path = fixture.configuration.stateDirectory + "/device.key"
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[20] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect {
            try fixture.reopen()
        } throws: { error in
            (error as? TokenError)?.code == .store && "\(error)".contains("device.key")
                && "\(error)".contains("integrity")
        }
    }

    /// A certificate is signed between two isolated steps of the token (a TPM's CA key signs
    /// asynchronously), so two adds of one name can both pass the first step; the second step
    /// must let one win and tell the other the user exists, never overwrite the winner.
    @Test(
        "adds of one name at once: one user is created, the others are told it exists, the winner's certificate and PIN stand"
    )
    func concurrentAddsOfOneName() async throws {
        let fixture = try TokenFixture()
        let token = try await fixture.initialize()
        for round in 0..<12 {
            let name = "carol\(round)"
            let results = await withTaskGroup(of: (String, Result<TokenCertificate, TokenError>).self) { group in
                for attempt in 0..<3 {
                    let pin = "carol-pin-\(attempt)"
                    group.addTask {
                        do throws(TokenError) {
                            return (
                                pin, .success(try await token.addUserReturningCertificate(name, pin: pin, roles: []))
                            )
                        } catch {
                            return (pin, .failure(error))
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            var winners: [(pin: String, certificate: TokenCertificate)] = []
            for (pin, result) in results {
                switch result {
                case .success(let certificate): winners.append((pin, certificate))
                case .failure(let error): #expect(error.code == .userExists, "\(error)")
                }
            }
            try #require(winners.count == 1, "round \(round): \(winners.count) adds of '\(name)' succeeded")
            let (pin, certificate) = winners[0]
            #expect(
                try await token.certificate(named: name) == certificate,
                "round \(round): the stored certificate is not the winner's"
            )
            #expect(try await token.verifyPIN(user: name, pin: pin) == .accepted)
        }
    }

}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }

}
