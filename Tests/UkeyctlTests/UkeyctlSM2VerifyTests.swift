import Crypto
import Foundation
import Testing
import UkeyAudit
import UkeyCore
import UkeySM
import UkeyTesting
import UkeyToken

/// A token whose keys are SM2 signs quotes and checkpoints SM2-with-SM3 under an SM2 hierarchy
/// (`SM2IdentityCA`). The offline verifiers take the algorithm from the certificate, never from
/// what they are handed, and check the SM2 signatures with the ID; openssl checks the quote too.
@Suite("ukeyctl quote verify and audit verify with SM2 keys")
struct UkeyctlSM2VerifyTests {
    static func ukeyctl(_ arguments: [String]) throws -> ExternalTool.Result {
        try ExternalTool.run(PackagePaths.builtProduct("ukeyctl"), arguments)
    }

    /// An SM2 token's root, token-keys and users CAs, and its attestation and audit keys.
    struct SM2Token {
        let now = Date()
        let root: SM2Certificate
        let tokenKeysCA: SM2Certificate
        let userCA: SM2Certificate
        let attestationKey: SM2PrivateKey
        let attestation: SM2Certificate
        let auditKey: SM2PrivateKey
        let audit: SM2Certificate
        let user: SM2Certificate

        init() throws {
            let id = SM2.defaultID
            let rootKey = try SM2PrivateKey()
            let keysCAKey = try SM2PrivateKey()
            let usersCAKey = try SM2PrivateKey()
            root = try SM2IdentityCA.makeRoot(key: rootKey, commonName: "ukey root CA sm2", now: now, id: id)
            tokenKeysCA = try SM2IdentityCA.makeSubordinate(
                .tokenKeys,
                commonName: "ukey token-keys CA sm2",
                subjectKey: try keysCAKey.publicKey,
                rootKey: rootKey,
                rootCertificate: root,
                now: now,
                id: id
            )
            userCA = try SM2IdentityCA.makeSubordinate(
                .users,
                commonName: "ukey users CA sm2",
                subjectKey: try usersCAKey.publicKey,
                rootKey: rootKey,
                rootCertificate: root,
                now: now,
                id: id
            )
            attestationKey = try SM2PrivateKey()
            auditKey = try SM2PrivateKey()
            attestation = try SM2IdentityCA.issue(
                commonName: "ukey attestation sm2",
                subjectKey: try attestationKey.publicKey,
                purpose: .attestation,
                caKey: keysCAKey,
                caCertificate: tokenKeysCA,
                now: now,
                id: id
            )
            audit = try SM2IdentityCA.issue(
                commonName: "ukey audit sm2",
                subjectKey: try auditKey.publicKey,
                purpose: .audit,
                caKey: keysCAKey,
                caCertificate: tokenKeysCA,
                now: now,
                id: id
            )
            user = try SM2IdentityCA.issue(
                commonName: "alice",
                subjectKey: try SM2PrivateKey().publicKey,
                purpose: .userIdentity,
                caKey: usersCAKey,
                caCertificate: userCA,
                now: now,
                id: id
            )
        }
    }

    @Test(
        "an SM2 quote verifies with ukeyctl (chain to the root, nonce, the ID) and with openssl dgst -sm3; another ID, a user's certificate, a changed byte or a foreign root do not"
    )
    func quote() throws {
        let token = try SM2Token()
        let dir = try TemporaryDirectory()
        let quote = UkeyQuote(
            nonce: [0xca, 0xfe],
            bootID: "boot-sm2",
            bootCounter: 3,
            time: UInt64(token.now.timeIntervalSince1970),
            bank: .sm3,
            registers: [(index: 8, value: SM3.hash(Array("kernel".utf8)))],
            eventLog: .of([1])
        )
        let bytes = quote.encoded()
        try dir.write("q.bin", bytes)
        try dir.write("q.sig", try token.attestationKey.signature(for: bytes, id: SM2.defaultID))
        try dir.write("ak.pem", Array((token.attestation.pemRepresentation + token.tokenKeysCA.pemRepresentation).utf8))
        try dir.write("user.pem", Array((token.user.pemRepresentation + token.userCA.pemRepresentation).utf8))
        try dir.write("root.pem", Array(token.root.pemRepresentation.utf8))
        let base = [
            "quote", "verify", "--quote", dir.file("q.bin"), "--signature", dir.file("q.sig"), "--nonce", "cafe",
        ]

        let good = try Self.ukeyctl(base + ["--cert", dir.file("ak.pem"), "--root-ca", dir.file("root.pem")])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(
            good.stdout.contains("quote verifies: signature, nonce, certificate chain")
                && good.stdout.contains("signed sm2-sm3"),
            "\(good.stdout)"
        )
        #expect(good.stdout.contains("sm3 register 8: \(Hex.encode(SM3.hash(Array("kernel".utf8))))"), "\(good.stdout)")

        let otherID = try Self.ukeyctl(base + ["--cert", dir.file("ak.pem"), "--sm2-id", "another-id"])
        #expect(
            otherID.status == 1 && otherID.stdout.contains("does not verify with the attestation key (sm2-sm3)"),
            "\(otherID.stdout)\(otherID.stderr)"
        )
        let badID = try Self.ukeyctl(base + ["--cert", dir.file("ak.pem"), "--sm2-id", ""])
        #expect(badID.status == 2, "\(badID.stdout)\(badID.stderr)")
        let user = try Self.ukeyctl(base + ["--cert", dir.file("user.pem")])
        #expect(user.status == 1 && user.stdout.contains("extended key usage"), "\(user.stdout)\(user.stderr)")
        var changed = bytes
        changed[changed.count - 1] ^= 1
        try dir.write("changed.bin", changed)
        let tampered = try Self.ukeyctl([
            "quote", "verify", "--quote", dir.file("changed.bin"), "--signature", dir.file("q.sig"), "--nonce", "cafe",
            "--cert", dir.file("ak.pem"),
        ])
        #expect(tampered.status == 1, "\(tampered.stdout)")
        let stranger = try SM2IdentityCA.makeRoot(
            key: try SM2PrivateKey(),
            commonName: "ukey root CA sm2",
            now: token.now,
            id: SM2.defaultID
        )
        try dir.write("stranger.pem", Array(stranger.pemRepresentation.utf8))
        let foreign = try Self.ukeyctl(base + ["--cert", dir.file("ak.pem"), "--root-ca", dir.file("stranger.pem")])
        #expect(foreign.status == 1 && foreign.stdout.contains("does not chain"), "\(foreign.stdout)")

        // An SM2 attestation certificate followed by an X.509 certificate: refused, not half-read.
        let x509 = try IdentityCA.pem(
            try IdentityCA.makeRoot(key: P256.Signing.PrivateKey(), commonName: "p256", now: token.now)
        )
        try dir.write("mixed.pem", Array((token.attestation.pemRepresentation + x509).utf8))
        let mixed = try Self.ukeyctl(base + ["--cert", dir.file("mixed.pem")])
        #expect(
            mixed.status == 1 && mixed.stdout.contains("mixes SM2 and other certificates"),
            "\(mixed.stdout)\(mixed.stderr)"
        )

        // openssl: the attestation key from the certificate, SM3 with the ID over the quote's bytes.
        let key = try ExternalTool("openssl").run([
            "x509", "-in", dir.file("ak.pem"), "-noout", "-pubkey", "-out", dir.file("ak.pub"),
        ])
        #expect(key.status == 0, "\(key.stderr)")
        let openssl = try ExternalTool("openssl").run([
            "dgst", "-sm3", "-verify", dir.file("ak.pub"), "-sigopt", "distid:1234567812345678", "-signature",
            dir.file("q.sig"), dir.file("q.bin"),
        ])
        #expect(openssl.stdout.contains("Verified OK"), "\(openssl.stdout)\(openssl.stderr)")
    }

    /// Signs checkpoints with the SM2 audit key, as an SM2 token does for the daemon.
    final class SM2Checkpointing: AuditCheckpointing, @unchecked Sendable {
        let key: SM2PrivateKey
        /// What the checkpoints state; a test makes it lie.
        let signatureAlgorithm: String
        init(key: SM2PrivateKey, stating algorithm: String = "sm2-sm3") {
            self.key = key
            signatureAlgorithm = algorithm
        }
        func signCheckpoint(_ message: [UInt8]) async throws -> [UInt8] {
            try key.signature(for: AuditCheckpoint.signingDomain + message, id: SM2.defaultID)
        }
        func sealCheckpoint(_ checkpoint: SealedCheckpoint) async throws {}
    }

    @Test(
        "an audit log with SM2-signed checkpoints verifies offline with the SM2 audit certificate; with the attestation certificate, another ID, or a forged checkpoint it does not"
    )
    func audit() async throws {
        let token = try SM2Token()
        let dir = try TemporaryDirectory()
        var configuration = AuditLog.Configuration(path: dir.file("audit.log"))
        configuration.checkpointEvery = 3
        configuration.checkpointInterval = 1e9
        let log = try AuditLog(
            configuration: configuration,
            sealed: nil,
            checkpointing: SM2Checkpointing(key: token.auditKey),
            problems: { _ in }
        )
        for n in 0..<7 {
            try await log.append(
                AuditEntry(
                    type: "exec",
                    actor: AuditActor(uid: 0, pid: 42, role: "hypervisor"),
                    subject: ["path": .string("/usr/bin/tool-\(n)"), "decision": "deny"]
                )
            )
        }
        await log.close()
        try dir.write("audit.pem", Array((token.audit.pemRepresentation + token.tokenKeysCA.pemRepresentation).utf8))
        try dir.write("ak.pem", Array((token.attestation.pemRepresentation + token.tokenKeysCA.pemRepresentation).utf8))
        try dir.write("root.pem", Array(token.root.pemRepresentation.utf8))
        let base = ["audit", "verify", "--log", dir.file("audit.log"), "--root-ca", dir.file("root.pem")]

        let good = try Self.ukeyctl(base + ["--cert", dir.file("audit.pem")])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        let written = try String(contentsOfFile: dir.file("audit.log"), encoding: .utf8)
        let checkpoints = written.components(separatedBy: "\"type\":\"checkpoint\"").count - 1
        #expect(checkpoints >= 3, "the log holds \(checkpoints) checkpoints")
        #expect(
            written.components(separatedBy: "\"alg\":\"sm2-sm3\"").count - 1 == checkpoints,
            "each checkpoint states its algorithm"
        )
        let attestation = try Self.ukeyctl(base + ["--cert", dir.file("ak.pem")])
        #expect(
            attestation.status == 1 && attestation.stdout.contains("NOT verified"),
            "\(attestation.stdout)\(attestation.stderr)"
        )
        let otherID = try Self.ukeyctl(base + ["--cert", dir.file("audit.pem"), "--sm2-id", "another-id"])
        #expect(otherID.status == 1, "\(otherID.stdout)\(otherID.stderr)")

        // A checkpoint signed by another SM2 key: forged.
        var text = try String(contentsOfFile: dir.file("audit.log"), encoding: .utf8)
        let other = try SM2PrivateKey()
        let forgedLog = try TemporaryDirectory()
        var forgedConfiguration = AuditLog.Configuration(path: forgedLog.file("audit.log"))
        forgedConfiguration.checkpointEvery = 3
        forgedConfiguration.checkpointInterval = 1e9
        let forger = try AuditLog(
            configuration: forgedConfiguration,
            sealed: nil,
            checkpointing: SM2Checkpointing(key: other),
            problems: { _ in }
        )
        for n in 0..<4 {
            try await forger.append(
                AuditEntry(
                    type: "exec",
                    actor: AuditActor(uid: 0, pid: 42, role: "hypervisor"),
                    subject: ["path": .string("/usr/bin/tool-\(n)"), "decision": "deny"]
                )
            )
        }
        await forger.close()
        text = try String(contentsOfFile: forgedLog.file("audit.log"), encoding: .utf8)
        try dir.write("forged.log", Array(text.utf8))
        let forged = try Self.ukeyctl([
            "audit", "verify", "--log", dir.file("forged.log"), "--cert", dir.file("audit.pem"),
        ])
        #expect(forged.status == 1, "\(forged.stdout)\(forged.stderr)")
        #expect(forged.stdout.contains("forged") || forged.stdout.contains("did not make"), "\(forged.stdout)")

        // Checkpoints with good SM2 signatures that state another algorithm: the certificate's
        // algorithm decides, and the disagreement is reported.
        let lyingLog = try TemporaryDirectory()
        var lyingConfiguration = AuditLog.Configuration(path: lyingLog.file("audit.log"))
        lyingConfiguration.checkpointEvery = 3
        lyingConfiguration.checkpointInterval = 1e9
        let liar = try AuditLog(
            configuration: lyingConfiguration,
            sealed: nil,
            checkpointing: SM2Checkpointing(key: token.auditKey, stating: "ecdsa-p256-sha256"),
            problems: { _ in }
        )
        for n in 0..<4 {
            try await liar.append(
                AuditEntry(
                    type: "exec",
                    actor: AuditActor(uid: 0, pid: 42, role: "hypervisor"),
                    subject: ["path": .string("/usr/bin/tool-\(n)"), "decision": "deny"]
                )
            )
        }
        await liar.close()
        let lying = try Self.ukeyctl([
            "audit", "verify", "--log", lyingLog.file("audit.log"), "--cert", dir.file("audit.pem"), "--root-ca",
            dir.file("root.pem"),
        ])
        #expect(lying.status == 1, "\(lying.stdout)\(lying.stderr)")
        #expect(
            lying.stdout.contains("says it is signed ecdsa-p256-sha256, but the audit key is sm2-sm3"),
            "\(lying.stdout)"
        )
    }
}
