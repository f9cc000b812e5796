import Crypto
import Foundation
import Testing
import UkeyCore
import UkeyTesting
import UkeyToken

@Suite("ukeyctl quote verify and keygen")
struct UkeyctlTokenTests {
    static func ukeyctl(_ arguments: [String]) throws -> ExternalTool.Result {
        try ExternalTool.run(PackagePaths.builtProduct("ukeyctl"), arguments)
    }

    enum OpenSSL {
        static func extractPublicKey(certificate: String, to path: String) throws {
            let result = try ExternalTool("openssl").run([
                "x509", "-in", certificate, "-pubkey", "-noout", "-out", path,
            ])
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    @Test("quote verify: 0 for a good quote; 1 with the reason for a wrong nonce, a tampered quote or a foreign root")
    func quoteVerify() async throws {
        let dir = try TemporaryDirectory()
        var configuration = SoftToken.Configuration(stateDirectory: dir.file("state"))
        configuration.kdf = .fastForTests
        let signer = try IdentityCA.makeRoot(key: P256.Signing.PrivateKey(), commonName: "signer", now: Date())
        let token = try await SoftToken.initialize(
            configuration,
            soPIN: "so-secret-42",
            policySigner: signer,
            bootID: "boot-7"
        )
        try await token.extend(register: 8, digest: .of([1]))
        let signed = try await token.quote(nonce: [0xca, 0xfe, 0xba, 0xbe], registers: [8], eventLog: .of([2]))
        try dir.write("q.bin", signed.quote)
        try dir.write("q.sig", signed.signature)
        let tokenKeysCA = try IdentityCA.pem(await token.certificate(named: "token-keys-ca"))
        try dir.write("ak.pem", Array((signed.certificatePEM + tokenKeysCA).utf8))
        try dir.write("root.pem", Array(try IdentityCA.pem(await token.certificate(named: "root-ca")).utf8))
        let base = [
            "quote", "verify", "--quote", dir.file("q.bin"), "--signature", dir.file("q.sig"), "--cert",
            dir.file("ak.pem"),
        ]

        let good = try Self.ukeyctl(base + ["--nonce", "cafebabe", "--root-ca", dir.file("root.pem")])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("quote verifies: signature, nonce, certificate chain"))
        #expect(good.stdout.contains("boot boot-7 (boot #1)"))
        #expect(
            good.stdout.contains(
                "sha256 register 8: \(Hex.encode(try await token.read(register: 8, bank: .sha256).bytes))"
            )
        )

        let replay = try Self.ukeyctl(base + ["--nonce", "cafebabf"])
        #expect(replay.status == 1 && replay.stdout.contains("nonce is not the one expected"))

        var tampered = signed.quote
        tampered[20] ^= 1
        try dir.write("q.bin", tampered)
        let forged = try Self.ukeyctl(base + ["--nonce", "cafebabe"])
        #expect(forged.status == 1 && forged.stdout.contains("signature does not verify"))
        try dir.write("q.bin", signed.quote)

        let other = try TemporaryDirectory()
        var otherConfiguration = SoftToken.Configuration(stateDirectory: other.file("state"))
        otherConfiguration.kdf = .fastForTests
        let otherToken = try await SoftToken.initialize(
            otherConfiguration,
            soPIN: "so-secret-42",
            policySigner: signer,
            bootID: "b"
        )
        try dir.write("other-root.pem", Array(try IdentityCA.pem(await otherToken.certificate(named: "root-ca")).utf8))
        let foreign = try Self.ukeyctl(base + ["--nonce", "cafebabe", "--root-ca", dir.file("other-root.pem")])
        #expect(
            foreign.status == 1 && foreign.stdout.contains("does not chain to the token's root"),
            "\(foreign.stdout)"
        )

        #expect(try Self.ukeyctl(base + ["--nonce", "xyz"]).status == 2)

        // Without its sub-CA, the attestation certificate does not chain to the root.
        try dir.write("ak-alone.pem", Array(signed.certificatePEM.utf8))
        let alone = try Self.ukeyctl([
            "quote", "verify", "--quote", dir.file("q.bin"), "--signature", dir.file("q.sig"), "--cert",
            dir.file("ak-alone.pem"), "--nonce", "cafebabe", "--root-ca", dir.file("root.pem"),
        ])
        #expect(alone.status == 1 && alone.stdout.contains("in the chain"), "\(alone.stdout)")
    }

    /// The review's attack: a user of the token signs a hand-built quote with an invented register
    /// through Token.Sign (her own key, her own session) and presents her certificate as the
    /// attestation key's. Both defences must hold on their own.
    @Test(
        "a quote signed through a user's key is refused: her certificate is no attestation key's, and her signature is never over bare quote bytes",
        .enabled(if: ExternalTool("openssl").shouldRun, "\(ExternalTool("openssl").skipReason)")
    )
    func userKeyCannotForgeQuote() async throws {
        let dir = try TemporaryDirectory()
        var configuration = SoftToken.Configuration(stateDirectory: dir.file("state"))
        configuration.kdf = .fastForTests
        let signer = try IdentityCA.makeRoot(key: P256.Signing.PrivateKey(), commonName: "signer", now: Date())
        let token = try await SoftToken.initialize(
            configuration,
            soPIN: "so-secret-42",
            policySigner: signer,
            bootID: "boot-7"
        )
        try await token.addUser("alice", pin: "alice-pin-1", roles: [])
        let forged = UkeyQuote(
            nonce: [0xca, 0xfe],
            bootID: "boot-7",
            bootCounter: 1,
            time: 1_700_000_000,
            bank: .sha256,
            registers: [(8, Array(repeating: 0x42, count: 32))],
            eventLog: .of([9])
        ).encoded()
        let signature = try await token.sign(asUser: "alice", digest: Array(SHA256.hash(data: forged)))
        try dir.write("q.bin", forged)
        try dir.write("q.sig", signature)
        let alice =
            try IdentityCA.pem(await token.certificate(named: "alice"))
            + IdentityCA.pem(await token.certificate(named: "user-ca"))
        try dir.write("alice.pem", Array(alice.utf8))
        try dir.write("root.pem", Array(try IdentityCA.pem(await token.certificate(named: "root-ca")).utf8))

        let base = [
            "quote", "verify", "--quote", dir.file("q.bin"), "--signature", dir.file("q.sig"), "--cert",
            dir.file("alice.pem"), "--nonce", "cafe",
        ]
        for extra in [["--root-ca", dir.file("root.pem")], []] {
            let result = try Self.ukeyctl(base + extra)
            #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
            #expect(
                result.stdout.contains("quote does NOT verify") && result.stdout.contains("not an attestation key's"),
                "\(result.stdout)"
            )
        }
        // Even with her key taken at face value, her signature is over the signing context and
        // the digest, not over the quote's bytes: openssl refuses it for the quote...
        try OpenSSL.extractPublicKey(certificate: dir.file("alice.pem"), to: dir.file("alice-pub.pem"))
        let bare = try ExternalTool("openssl").run([
            "dgst", "-sha256", "-verify", dir.file("alice-pub.pem"), "-signature", dir.file("q.sig"), dir.file("q.bin"),
        ])
        #expect(bare.status == 1 && bare.stdout.contains("Verification failure"))
        // ...and accepts it for what Token.Sign documents it signs.
        try dir.write("signed.bin", SigningContext.tokenSign + Array(SHA256.hash(data: forged)))
        let contextual = try ExternalTool("openssl").run([
            "dgst", "-sha256", "-verify", dir.file("alice-pub.pem"), "-signature", dir.file("q.sig"),
            dir.file("signed.bin"),
        ])
        #expect(contextual.status == 0, "\(contextual.stdout)\(contextual.stderr)")
        // openssl's own policy check tells the two kinds of key apart along the path.
        try dir.write("chain.pem", Array(alice.utf8))
        let asAttestation = try ExternalTool("openssl").run([
            "verify", "-CAfile", dir.file("root.pem"), "-untrusted", dir.file("chain.pem"), "-policy",
            CertificatePolicy.tokenKeys.oid, "-explicit_policy", dir.file("alice.pem"),
        ])
        #expect(asAttestation.status != 0)
        let asUser = try ExternalTool("openssl").run([
            "verify", "-CAfile", dir.file("root.pem"), "-untrusted", dir.file("chain.pem"), "-policy",
            CertificatePolicy.users.oid, "-explicit_policy", dir.file("alice.pem"),
        ])
        #expect(asUser.status == 0, "\(asUser.stdout)\(asUser.stderr)")
    }

    @Test(
        "keygen writes a 0600 key and a certificate that openssl signs and verifies policies with",
        .enabled(if: ExternalTool("openssl").shouldRun, "\(ExternalTool("openssl").skipReason)")
    )
    func keygen() throws {
        let dir = try TemporaryDirectory()
        let result = try Self.ukeyctl(["keygen", "--out", dir.file("signer")])
        #expect(result.status == 0, "\(result.stderr)")
        let mode =
            try FileManager.default.attributesOfItem(atPath: dir.file("signer.key.pem"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
        try dir.write("policy.yaml", Array("version: 1\nentities: []\n".utf8))
        let openssl = ExternalTool("openssl")
        #expect(
            try openssl.run([
                "dgst", "-sha256", "-sign", dir.file("signer.key.pem"), "-out", dir.file("policy.sig"),
                dir.file("policy.yaml"),
            ]).status == 0
        )
        #expect(
            try openssl.run(["x509", "-in", dir.file("signer.pem"), "-pubkey", "-noout", "-out", dir.file("pub.pem")])
                .status == 0
        )
        let verified = try openssl.run([
            "dgst", "-sha256", "-verify", dir.file("pub.pem"), "-signature", dir.file("policy.sig"),
            dir.file("policy.yaml"),
        ])
        #expect(verified.stdout.contains("Verified OK"))
        let again = try Self.ukeyctl(["keygen", "--out", dir.file("signer")])
        #expect(again.status == 2 && again.stderr.contains("refusing to overwrite"))
    }
}
