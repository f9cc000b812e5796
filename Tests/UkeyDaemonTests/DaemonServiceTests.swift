import Crypto
import Foundation
import Testing
import UkeyClient
import UkeyCore
import UkeyTesting
import UkeyToken
import UkeyVarlink

@Suite("ukeyd: attestation, PINs, policies, tokens")
struct DaemonServiceTests {
    static let openssl = ExternalTool("openssl")
    static let eventlog = ExternalTool("tpm2_eventlog")
    static let checkquote = ExternalTool("tpm2_checkquote")

    @Test(
        "the quote verifies with the openssl CLI; the event log replays to the quoted registers",
        .enabled(
            if: openssl.shouldRun && eventlog.shouldRun,
            Comment(rawValue: openssl.skipReason + "; " + eventlog.skipReason)
        )
    )
    func quote() throws {
        let f = try DaemonFixture()
        try f.bootHost()
        let nonce: [UInt8] = Array("nonce-from-verifier".utf8)
        let reply = try f.daemon.call("io.ukey.Boot.Quote", ["nonce": .string(Data(nonce).base64EncodedString())])
        let tpm2 = f.daemon.backend == .tpm
        #expect(reply["format"] == (tpm2 ? "tpm2" : "ukey-v1"))
        let dir = try TemporaryDirectory()
        let quote = Array(Data(base64Encoded: reply["quote"]!.stringValue!)!)
        let signature = Array(Data(base64Encoded: reply["signature"]!.stringValue!)!)
        try dir.write("quote.bin", quote)
        try dir.write("quote.sig", signature)
        try dir.write("ak.pem", Array(reply["certificate"]!.stringValue!.utf8))
        try dir.write("chain.pem", Array(reply["chain"]!.stringValue!.utf8))
        try dir.write(
            "root.pem",
            Array(try f.daemon.call("io.ukey.Token.Certificate", ["name": "root-ca"])["pem"]!.stringValue!.utf8)
        )
        if f.daemon.backend == .sm2 {
            // openssl verify does not take SM2 chains (docs/quote-format.md): ukeyctl checks the
            // chain to the root, the purpose, the nonce and the signature with the SM2 ID.
            try dir.write(
                "ak-chain.pem",
                Array((reply["certificate"]!.stringValue! + reply["chain"]!.stringValue!).utf8)
            )
            let ukeyctl = PackagePaths.builtProduct("ukeyctl")
            let base = [
                "quote", "verify", "--quote", dir.file("quote.bin"), "--signature", dir.file("quote.sig"), "--nonce",
                Hex.encode(nonce), "--cert", dir.file("ak-chain.pem"),
            ]
            let checked = try ExternalTool.run(ukeyctl, base + ["--root-ca", dir.file("root.pem")])
            #expect(
                checked.status == 0 && checked.stdout.contains("signed sm2-sm3"),
                "\(checked.stdout)\(checked.stderr)"
            )
            let otherID = try ExternalTool.run(
                ukeyctl,
                base + ["--root-ca", dir.file("root.pem"), "--sm2-id", "another-id"]
            )
            #expect(otherID.status == 1, "\(otherID.stdout)\(otherID.stderr)")
        } else {
            // The docs' recipe: the attestation key is the token's, under the token-keys policy.
            let chained = try Self.openssl.run([
                "verify", "-x509_strict", "-CAfile", dir.file("root.pem"), "-untrusted", dir.file("chain.pem"),
                "-policy", CertificatePolicy.tokenKeys.oid, "-explicit_policy", dir.file("ak.pem"),
            ])
            #expect(chained.status == 0, "\(chained.stdout)\(chained.stderr)")
            #expect(
                try Self.openssl.run([
                    "verify", "-CAfile", dir.file("root.pem"), "-untrusted", dir.file("chain.pem"), "-policy",
                    CertificatePolicy.users.oid, "-explicit_policy", dir.file("ak.pem"),
                ]).status != 0
            )
        }
        #expect(
            try Self.openssl.run([
                "x509", "-in", dir.file("ak.pem"), "-pubkey", "-noout", "-out", dir.file("ak-pub.pem"),
            ]).status == 0
        )
        // The key alone, as the reply also gives it, is the certified one.
        let publicKey = try String(contentsOfFile: dir.file("ak-pub.pem"), encoding: .utf8)
        #expect(
            publicKey.filter { !$0.isWhitespace } == reply["attestationKey"]?.stringValue?.filter { !$0.isWhitespace }
        )
        #expect(reply["algorithm"] == .string(f.daemon.backend.signatureAlgorithm))
        if tpm2 {
            let checked = try Self.checkquote.run([
                "-u", dir.file("ak-pub.pem"), "-m", dir.file("quote.bin"), "-s", dir.file("quote.sig"), "-g", "sha256",
                "-q", Hex.encode(nonce),
            ])
            #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        } else {
            let digest = f.daemon.backend == .sm2 ? ["-sm3", "-sigopt", "distid:1234567812345678"] : ["-sha256"]
            let verified = try Self.openssl.run(
                ["dgst"] + digest + [
                    "-verify", dir.file("ak-pub.pem"), "-signature", dir.file("quote.sig"), dir.file("quote.bin"),
                ]
            )
            #expect(verified.stdout.contains("Verified OK"), "\(verified.stdout)\(verified.stderr)")
        }

        // The quoted registers equal tpm2_eventlog's replay of the daemon's event log (ukey-v1
        // quotes carry the values and bind the log by digest; tpm2 quotes carry the values' digest).
        let log = Array(Data(base64Encoded: try f.daemon.call("io.ukey.Boot.EventLog")["data"]!.stringValue!)!)
        let replayed = try EventLog(parsing: log).replay().banks[.sha256]!.values
        let quoted: [(index: Int, value: [UInt8])]
        if tpm2 {
            let parsed = try QuoteVerifier.verifyTPM2(
                attest: quote,
                signature: signature,
                certificatePEM: reply["certificate"]!.stringValue!,
                nonce: nonce,
                registerValues: Dictionary(uniqueKeysWithValues: replayed.enumerated().map { ($0.offset, $0.element) })
            )
            quoted = parsed.pcrs.map { ($0, replayed[$0]) }
        } else {
            let parsed = try UkeyQuote(parsing: quote)
            #expect(parsed.nonce == nonce)
            #expect(parsed.eventLog == Digest.of(log))
            quoted = parsed.registers
        }
        try dir.write("log.bin", log)
        let replay = try Self.eventlog.run([dir.file("log.bin")])
        #expect(replay.status == 0)
        for register in quoted {
            let line = { (pad: String) in "\n    \(register.index)\(pad): 0x\(Hex.encode(register.value))" }
            if register.value == [UInt8](repeating: 0, count: 32) {
                // No event touched it (no user VM started yet): tpm2_eventlog lists no value for it.
                #expect(register.index == 11 && !replay.stdout.contains("\n    \(register.index) "))
            } else {
                #expect(
                    replay.stdout.contains(line("  ")) || replay.stdout.contains(line(" ")),
                    "register \(register.index)"
                )
            }
        }
        #expect(quoted.map(\.index) == [8, 9, 10, 11, 12, 13])

        // The SM3 bank, where the registers have one: its quote (signed like any other) carries
        // the SM3 registers, which equal tpm2_eventlog's replay of the log's SM3 digests. Where
        // there is none, or for an unknown bank, the call is refused naming the parameter.
        let sm3Nonce = Array("sm3-nonce".utf8)
        let sm3Call: [String: JSONValue] = ["nonce": .string(Data(sm3Nonce).base64EncodedString()), "bank": "sm3"]
        if f.daemon.backend == .sm2 {
            let sm3Reply = try f.daemon.call("io.ukey.Boot.Quote", sm3Call)
            let sm3Quote = Array(Data(base64Encoded: sm3Reply["quote"]!.stringValue!)!)
            try dir.write("sm3-quote.bin", sm3Quote)
            try dir.write("sm3-quote.sig", Array(Data(base64Encoded: sm3Reply["signature"]!.stringValue!)!))
            let checked = try ExternalTool.run(
                PackagePaths.builtProduct("ukeyctl"),
                [
                    "quote", "verify", "--quote", dir.file("sm3-quote.bin"), "--signature", dir.file("sm3-quote.sig"),
                    "--nonce", Hex.encode(sm3Nonce),
                    "--cert", dir.file("ak-chain.pem"), "--root-ca", dir.file("root.pem"),
                ]
            )
            #expect(
                checked.status == 0 && checked.stdout.contains("sm3 register 8:"),
                "\(checked.stdout)\(checked.stderr)"
            )
            let parsed = try UkeyQuote(parsing: sm3Quote)
            #expect(parsed.bank == .sm3)
            let sm3Replayed = TPM2EventLogReplay.registers(replay.stdout)["sm3_256"] ?? [:]
            let touched = parsed.registers.filter { $0.value != [UInt8](repeating: 0, count: 32) }
            #expect(touched.count >= 5, "\(parsed.registers)")
            for register in touched {
                #expect(
                    sm3Replayed[register.index] == Hex.encode(register.value),
                    "sm3 register \(register.index): quoted \(Hex.encode(register.value)), tpm2_eventlog \(String(describing: sm3Replayed[register.index]))"
                )
            }
        } else {
            #expect { try f.daemon.call("io.ukey.Boot.Quote", sm3Call) } throws: { error in
                (error as? VarlinkError)?.name == "org.varlink.service.InvalidParameter"
                    && (error as? VarlinkError)?.parameters["parameter"] == "bank"
            }
        }
        #expect {
            try f.daemon.call(
                "io.ukey.Boot.Quote",
                ["nonce": .string(Data(sm3Nonce).base64EncodedString()), "bank": "md5"]
            )
        } throws: { error in
            (error as? VarlinkError)?.parameters["parameter"] == "bank"
        }
        // Each bad field is named by what it is, not found in an error's text.
        #expect { try f.daemon.call("io.ukey.Boot.Quote", ["nonce": ""]) } throws: { error in
            (error as? VarlinkError)?.parameters["parameter"] == "nonce"
        }
        #expect {
            try f.daemon.call(
                "io.ukey.Boot.Quote",
                ["nonce": .string(Data(sm3Nonce).base64EncodedString()), "registers": [8, 8]]
            )
        } throws: { error in
            (error as? VarlinkError)?.parameters["parameter"] == "registers"
        }
        #expect {
            try f.daemon.call(
                "io.ukey.Boot.Quote",
                ["nonce": .string(Data(sm3Nonce).base64EncodedString()), "registers": [24]]
            )
        } throws: { error in
            (error as? VarlinkError)?.parameters["parameter"] == "registers"
        }
    }

    @Test("io.ukey.Admin.Version names ukeyd, the version GetInfo gives and the token's backend")
    func version() throws {
        let f = try DaemonFixture()
        let version = try f.daemon.call("io.ukey.Admin.Version")
        let info = try f.daemon.call("org.varlink.service.GetInfo")
        let status = try f.daemon.call("io.ukey.Admin.Status")
        #expect(version["product"] == "ukeyd" && version["version"] == info["version"] && version["version"] != nil)
        #expect(version["backend"] == status["backend"] && status["backend"] != nil, "\(version)")
    }

    @Test("three bad PINs lock a user; the lock survives a restart; the SO PIN (on a card: its PUK) unblocks")
    func lockoutAndUnblock() throws {
        let f = try DaemonFixture()
        // On users' own cards the SO PIN is the card's PUK, which has 3 tries; the store's has 10.
        let soTriesAfterOneMiss = f.daemon.backend == .pcsc ? 2 : 9
        for left in [2, 1] {
            #expect { try f.daemon.call("io.ukey.Auth.Login", ["user": "bob", "pin": "wrong-px"]) } throws: { error in
                (error as? VarlinkError) == VarlinkError("io.ukey.Auth.BadPin", ["retriesLeft": .int(left)])
            }
        }
        #expect { try f.daemon.call("io.ukey.Auth.Login", ["user": "bob", "pin": "wrong-px"]) } throws: {
            VarlinkError.named("io.ukey.Auth.PinLocked")($0)
        }
        f.daemon.stop()
        try f.daemon.start()
        #expect { try f.daemon.call("io.ukey.Auth.Login", ["user": "bob", "pin": "bob-pin2"]) } throws: {
            VarlinkError.named("io.ukey.Auth.PinLocked")($0)
        }
        #expect {
            try f.daemon.call("io.ukey.Admin.UnblockPin", ["user": "bob", "soPin": "wrongpuk", "newPin": "bob-p2"])
        } throws: { error in
            (error as? VarlinkError)
                == VarlinkError("io.ukey.Admin.BadSoPin", ["retriesLeft": .int(soTriesAfterOneMiss)])
        }
        try f.daemon.call(
            "io.ukey.Admin.UnblockPin",
            ["user": "bob", "soPin": .string(DaemonFixture.soPIN), "newPin": "bob-p2"]
        )
        let login = try f.daemon.call("io.ukey.Auth.Login", ["user": "bob", "pin": "bob-p2"])
        #expect(login["roles"] == ["developer"])
        #expect(login["certificate"]?.stringValue?.hasPrefix("-----BEGIN CERTIFICATE-----") == true)
        #expect { try f.daemon.call("io.ukey.Auth.Login", ["user": "mallory", "pin": "whatever1"]) } throws: {
            VarlinkError.named("io.ukey.Auth.UnknownUser")($0)
        }
    }

    @Test("policies refused for a bad signature, a rollback or lint errors; the old one stays in force")
    func policyRejection() throws {
        let f = try DaemonFixture()
        #expect(try f.daemon.call("io.ukey.Admin.Status")["policyVersion"] == 1)
        let v2 = f.policyText.replacingOccurrences(of: "version: 1", with: "version: 2")
        func rejected(_ text: String, signature: String? = nil, because reason: String) throws {
            #expect {
                try f.loadPolicy(text, signature: signature)
            } throws: { error in
                guard let error = error as? VarlinkError, error.name == "io.ukey.Admin.PolicyRejected" else {
                    return false
                }
                return error.parameters["reason"]?.stringValue?.contains(reason) == true
            }
            #expect(try f.daemon.call("io.ukey.Admin.Status")["policyVersion"] == 1)
        }
        // Signed by someone else.
        let stranger = P256.Signing.PrivateKey()
        let forged = Data(try stranger.signature(for: SHA256.hash(data: Array(v2.utf8))).derRepresentation)
            .base64EncodedString()
        try rejected(v2, signature: forged, because: "signature does not verify")
        // The signature of one text on another.
        try rejected(v2 + "\n# edited after signing\n", signature: try f.sign(v2), because: "signature does not verify")
        // Rollback and replay.
        try rejected(f.policyText, because: "not above the loaded version 1")
        // Lint problems, properly signed.
        try rejected(
            v2.replacingOccurrences(of: "parent: debian-base", with: "parent: debian-bse"),
            because: "unknown parent"
        )
        // A good one goes through, and survives a restart.
        #expect(try f.loadPolicy(v2)["version"] == 2)
        f.daemon.stop()
        try f.daemon.start()
        #expect(try f.daemon.call("io.ukey.Admin.Status")["policyVersion"] == 2)
    }

    @Test("a policy file changed behind the daemon's back stops it from starting")
    func tamperedStoredPolicy() throws {
        let f = try DaemonFixture()
        f.daemon.stop()
        let path = f.daemon.stateDirectory + "/policy.yaml"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "mode: enforce", with: "mode: audit")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        #expect(throws: TestDaemonError.self) { try f.daemon.start() }
        #expect(f.daemon.log().contains("integrity check failed: the policy file is not the one that was loaded"))
    }

    /// policies/demo.yaml's digests are a golden file: an independent tool must agree with them.
    @Test("every digest the shipped demo policy carries is its file's SHA-256 as sha256sum computes it")
    func demoDigestsMatchSha256sum() throws {
        // The shipped file as it is (the SM2 backend's fixture rewrites its digests as SM3).
        let f = try DaemonFixture(load: false, backend: .soft)
        let policy = try UkeyPolicyLookup(text: f.policyText)
        var checked = 0
        for (entity, components) in policy.files {
            for (component, file) in components {
                let result = try ExternalTool.run("/usr/bin/sha256sum", [file])
                let hex = String(result.stdout.prefix(64))
                #expect(
                    result.status == 0 && "sha256:" + hex == policy.digest(entity, component),
                    "\(entity)/\(component): sha256sum says \(hex)"
                )
                checked += 1
            }
        }
        #expect(checked >= 12, "only \(checked) components checked")
    }

    @Test("Token: info, certificates, random, user signing needs the user's session, restricted keys refuse")
    func tokenService() throws {
        let f = try DaemonFixture()
        let info = try f.daemon.call("io.ukey.Token.Info")
        #expect(info["backend"] == .string(f.daemon.backend.infoName))
        for (role, backend) in f.daemon.backend.roleNames {
            #expect(info["roles"]?[role] == .string(backend), "\(role)")
        }
        #expect(
            Data(base64Encoded: try f.daemon.call("io.ukey.Token.Random", ["bytes": 1024])["data"]!.stringValue!)?.count
                == 1024
        )
        #expect { try f.daemon.call("io.ukey.Token.Random", ["bytes": 1025]) } throws: {
            VarlinkError.named("org.varlink.service.InvalidParameter")($0)
        }
        #expect { try f.daemon.call("io.ukey.Token.Certificate", ["name": "nobody"]) } throws: {
            VarlinkError.named("io.ukey.Token.UnknownCertificate")($0)
        }
        let digest = Data(SHA256.hash(data: Array("contract".utf8))).base64EncodedString()
        #expect { try f.daemon.call("io.ukey.Token.Sign", ["key": "alice", "digest": .string(digest)]) } throws: {
            VarlinkError.named("io.ukey.Token.SessionRequired")($0)
        }
        let bob = try f.daemon.call("io.ukey.Auth.Login", ["user": "bob", "pin": "bob-pin2"])["session"]!
        #expect {
            try f.daemon.call("io.ukey.Token.Sign", ["key": "alice", "digest": .string(digest), "session": bob])
        } throws: { VarlinkError.named("io.ukey.Token.SessionRequired")($0) }
        for restricted in ["root-ca", "attestation", "audit"] {
            #expect {
                try f.daemon.call(
                    "io.ukey.Token.Sign",
                    ["key": .string(restricted), "digest": .string(digest), "session": bob]
                )
            } throws: {
                VarlinkError.named("io.ukey.Token.RestrictedKey")($0)
            }
        }
        let signed = try f.daemon.call("io.ukey.Token.Sign", ["key": "bob", "digest": .string(digest), "session": bob])
        #expect(signed["algorithm"] == .string(f.daemon.backend.signatureAlgorithm))
        #expect(
            info["algorithms"]?.arrayValue?.contains(.string(f.daemon.backend.signatureAlgorithm)) == true,
            "\(info)"
        )
        // The signature is the key's that bob's login certificate names, which chains to the root
        // as a user's: the certificate a relying party gets is the one to check it with.
        let bobLogin = try f.daemon.call("io.ukey.Auth.Login", ["user": "bob", "pin": "bob-pin2"])
        let userBundle =
            try bobLogin["certificate"]!.stringValue! + f.daemon.call("io.ukey.Token.Certificate", ["name": "user-ca"])[
                "pem"
            ]!.stringValue!
        let rootPEM = try f.daemon.call("io.ukey.Token.Certificate", ["name": "root-ca"])["pem"]!.stringValue!
        let bobKey = try CertificateBundle.verificationKey(userBundle, for: .userIdentity, rootCAPEM: rootPEM)
        #expect(bobKey.algorithm == f.daemon.backend.signatureAlgorithm)
        let signature = Array(Data(base64Encoded: signed["signature"]!.stringValue!)!)
        let message = SigningContext.tokenSignMessage(digest: Array(Data(base64Encoded: digest)!))
        #expect(
            bobKey.isValidSignature(signature, for: message),
            "bob's signature does not verify with his certificate"
        )
        #expect(throws: TokenError.self) {
            try CertificateBundle.verificationKey(userBundle, for: .attestation, rootCAPEM: rootPEM)
        }
        #expect(signed["context"] == .string(Data(SigningContext.tokenSign).base64EncodedString()))
        for restricted in ["token-keys-ca", "user-ca"] {
            #expect {
                try f.daemon.call(
                    "io.ukey.Token.Sign",
                    ["key": .string(restricted), "digest": .string(digest), "session": bob]
                )
            } throws: {
                VarlinkError.named("io.ukey.Token.RestrictedKey")($0)
            }
        }
        #expect {
            try f.daemon.call("io.ukey.Admin.Initialize", ["soPin": "another-so-pin", "policySigner": "x"])
        } throws: { VarlinkError.named("io.ukey.Admin.AlreadyInitialized")($0) }
    }

    @Test("run-time whitelist: allow, digest-mismatch, default deny, vm-not-trusted; batch keeps order")
    func checkExec() throws {
        let f = try DaemonFixture()
        let soffice = "sha256:5f0c3c1e2c0a3b1f3e1c55f2b3e2c1f0a9d8c7b6a5f4e3d2c1b0a99887766554"
        func check(_ vm: String, _ path: String, _ digest: String) throws -> (String?, String?) {
            let r = try f.daemon.call(
                "io.ukey.Runtime.CheckExec",
                ["vm": .string(vm), "path": .string(path), "digest": .string(digest)]
            )
            return (r["decision"]?.stringValue, r["reason"]?.stringValue)
        }
        #expect(try check("office", "/usr/bin/soffice", soffice) == ("deny", "vm-not-trusted"))
        try f.bootHost()
        let alice = try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]!
            .stringValue!
        try f.measureByPath("office", session: alice)
        #expect(try check("office", "/usr/bin/soffice", soffice) == ("allow", nil))
        #expect(
            try check("office", "/usr/bin/soffice", "sha256:" + String(repeating: "1", count: 64)) == (
                "deny", "digest-mismatch"
            )
        )
        #expect(try check("office", "/usr/bin/nc", soffice) == ("deny", "not-whitelisted"))
        let batch = try f.daemon.call(
            "io.ukey.Runtime.CheckExecBatch",
            [
                "items": [
                    ["vm": "office", "path": "/usr/bin/soffice", "digest": .string(soffice)],
                    ["vm": "office", "path": "/usr/bin/nc", "digest": .string(soffice)],
                    ["vm": "dev", "path": "/usr/bin/gcc-12", "digest": .string(soffice)],
                ]
            ]
        )
        #expect(batch["results"]?.arrayValue?.map { $0["decision"]?.stringValue } == ["allow", "deny", "deny"])
        #expect(batch["results"]?.arrayValue?[2]["reason"] == "vm-not-trusted")
    }
}
