import Crypto
import Foundation
import Testing
import UkeyClient
import UkeyCore
import UkeyTesting
import UkeyTPM
import UkeyToken
import UkeyVarlink
import X509

/// ukeyd on the tpm backend (registers and keys), each test with a swtpm of its own, checked by
/// tpm2-tools. The daemon holds the TPM's one connection while it runs (swtpm serves one client
/// at a time), so the tools look at the TPM once the daemon has stopped; PCRs outlive it.
@Suite("ukeyd on the TPM", .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)"))
struct DaemonTPMTests {
    static let pcrread = ExternalTool("tpm2_pcrread")
    static let pcrextend = ExternalTool("tpm2_pcrextend")
    static let checkquote = ExternalTool("tpm2_checkquote")
    static let eventlog = ExternalTool("tpm2_eventlog")
    static let ukeyctl = PackagePaths.builtProduct("ukeyctl")

    /// The values tpm2_pcrread prints for `pcrs` in `bank` (SHA-256 unless given).
    static func readPCRs(
        _ tcti: String,
        _ pcrs: [Int],
        bank: String = "sha256",
        output: String? = nil
    ) throws -> [Int: String] {
        let result = try pcrread.run(
            ["-T", tcti, bank + ":" + pcrs.map(String.init).joined(separator: ",")] + (output.map { ["-o", $0] } ?? [])
        )
        guard result.status == 0 else { throw TestDaemonError("tpm2_pcrread: \(result.stderr)") }
        var values: [Int: String] = [:]
        for line in result.stdout.split(separator: "\n") {
            let parts = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, let index = Int(parts[0]), parts[1].hasPrefix("0x") {
                values[index] = parts[1].dropFirst(2).lowercased()
            }
        }
        return values
    }

    @Test(
        "measurements land in real PCRs: tpm2_pcrread equals the event log's replay, tpm2_eventlog agrees, tpm2_checkquote accepts the quote with our nonce and the read PCRs, and rejects another nonce; a reset keeps the earlier session in the log"
    )
    func bootChainOnPCRs() throws {
        let f = try DaemonFixture(backend: .tpm)
        let tcti = f.daemon.tpm!.tcti
        let status = try f.daemon.call("io.ukey.Admin.Status")
        #expect(
            status["backend"] == "tpm" && status["roles"]?["registers"] == "tpm" && status["roles"]?["keys"] == "tpm"
                && status["roles"]?["users"] == "soft"
        )
        let shown = try ExternalTool.run(Self.ukeyctl, ["status", "--socket", f.daemon.socketPath])
        #expect(shown.stdout.contains("registers") && shown.stdout.contains("tpm"), "\(shown.stdout)")

        try f.bootHost()
        let firstBoot = try f.daemon.call("io.ukey.Boot.Chain")["bootId"]
        let reset = try f.daemon.call("io.ukey.Boot.Reset")["bootId"]
        #expect(reset != firstBoot)
        let again = try f.measureByPath("vmm")
        #expect(again.last?["verdict"] == "trusted")

        let nonce = (0..<20).map { _ in UInt8.random(in: 0...255) }
        let quote = try f.daemon.call("io.ukey.Boot.Quote", ["nonce": .string(Data(nonce).base64EncodedString())])
        #expect(quote["format"] == "tpm2")
        let logBytes = Array(Data(base64Encoded: try f.daemon.call("io.ukey.Boot.EventLog")["data"]!.stringValue!)!)
        let log = try EventLog(parsing: logBytes)
        let replayed = log.replay().banks[.sha256]!.values
        // Both sessions are in the log: six entities, then vmm again.
        let measuredComponents = try UkeyPolicyLookup(text: f.policyText)
        let expectedEvents = ["vmm", "io-vm", "io-loader", "io-kernel", "mgmt-vm", "debian-base", "vmm"].reduce(0) {
            $0 + measuredComponents.components($1).count
        }
        #expect(log.events.count == expectedEvents, "every measurement of both sessions")

        let work = try TemporaryDirectory()
        try work.write("quote.bin", Array(Data(base64Encoded: quote["quote"]!.stringValue!)!))
        try work.write("quote.sig", Array(Data(base64Encoded: quote["signature"]!.stringValue!)!))
        try work.write("ak.pem", Array(quote["attestationKey"]!.stringValue!.utf8))
        try work.write("ak-cert.pem", Array(quote["certificate"]!.stringValue!.utf8))
        try work.write("log.bin", logBytes)
        f.daemon.stop()

        let pcrs = [8, 9, 10, 11, 12, 13]
        let values = try Self.readPCRs(tcti, pcrs, output: work.file("pcrs.bin"))
        for pcr in pcrs {
            #expect(values[pcr] == Hex.encode(replayed[pcr]), "PCR \(pcr): the TPM and the event log's replay")
        }
        #expect(values[8] != String(repeating: "0", count: 64) && values[11] == String(repeating: "0", count: 64))
        let replay = try Self.eventlog.run([work.file("log.bin")])
        #expect(replay.status == 0, "\(replay.stderr)")
        for pcr in pcrs where values[pcr] != String(repeating: "0", count: 64) {
            #expect(replay.stdout.lowercased().contains("0x\(values[pcr]!)"), "tpm2_eventlog's replay of PCR \(pcr)")
        }
        // Every bank this TPM has allocated and ukey knows is extended, not only SHA-256 (swtpm
        // allocates sha1, sha256, sha384 and sha512; ukey does not compute SHA-1): each equals
        // tpm2_eventlog's replay of that bank of the log. An SM3 bank goes the same way.
        let replayedBanks = TPM2EventLogReplay.registers(replay.stdout)
        for bank in ["sha384", "sha512"] {
            let read = try Self.readPCRs(tcti, pcrs, bank: bank)
            let fromLog = replayedBanks[bank] ?? [:]
            #expect(!fromLog.isEmpty, "the event log has no \(bank) bank: \(replayedBanks.keys.sorted())")
            #expect(
                read[8] != nil && read[8] != String(repeating: "0", count: 2 * (bank == "sha384" ? 48 : 64)),
                "\(bank) PCR 8 was not extended"
            )
            for pcr in pcrs where fromLog[pcr] != nil {
                #expect(
                    read[pcr] == fromLog[pcr],
                    "\(bank) PCR \(pcr): the TPM \(read[pcr] ?? "?") and tpm2_eventlog's replay \(fromLog[pcr]!)"
                )
            }
        }
        let selection = "sha256:" + pcrs.map(String.init).joined(separator: ",")
        let accepted = try Self.checkquote.run([
            "-u", work.file("ak.pem"), "-m", work.file("quote.bin"), "-s", work.file("quote.sig"), "-g", "sha256",
            "-q", Hex.encode(nonce), "-f", work.file("pcrs.bin"), "-l", selection,
        ])
        #expect(accepted.status == 0, "\(accepted.stdout)\(accepted.stderr)")
        let replayedNonce = try Self.checkquote.run([
            "-u", work.file("ak.pem"), "-m", work.file("quote.bin"), "-s", work.file("quote.sig"), "-g", "sha256", "-q",
            Hex.encode(nonce.reversed()),
        ])
        #expect(replayedNonce.status != 0)
        // ukeyctl checks the same quote against the event log (and refuses another nonce).
        let ours = try ExternalTool.run(
            Self.ukeyctl,
            [
                "quote", "verify", "--quote", work.file("quote.bin"), "--signature", work.file("quote.sig"), "--cert",
                work.file("ak-cert.pem"), "--nonce", Hex.encode(nonce), "--event-log", work.file("log.bin"),
            ]
        )
        #expect(ours.status == 0 && ours.stdout.contains("tpm2 quote verifies"), "\(ours.stdout)\(ours.stderr)")
        let wrong = try ExternalTool.run(
            Self.ukeyctl,
            [
                "quote", "verify", "--quote", work.file("quote.bin"), "--signature", work.file("quote.sig"), "--cert",
                work.file("ak-cert.pem"), "--nonce", "00",
            ]
        )
        #expect(wrong.status == 1)
    }

    @Test(
        "a restart neither measures again nor forgets; an extend cut short is completed; a PCR extended behind ukeyd's back stops the start"
    )
    func restartChecksPCRs() throws {
        let f = try DaemonFixture(backend: .tpm)
        let tcti = f.daemon.tpm!.tcti
        try f.measureByPath("vmm")
        f.daemon.stop()
        let before = try Self.readPCRs(tcti, [8])[8]!
        try f.daemon.start()
        #expect(try f.state("vmm").state == "trusted")
        f.daemon.stop()
        #expect(try Self.readPCRs(tcti, [8])[8] == before, "no second extend on restart")

        // A crash after the journal took a measurement but before the TPM did: the start completes it.
        let digest = Digest.of(Array("an io-vm firmware".utf8))
        let line = #"{"e":"io-vm","c":"firmware","d":"\#(digest.description)","r":9}"# + "\n"
        let journal = try FileHandle(forWritingTo: URL(fileURLWithPath: f.daemon.runtimeDirectory + "/boot.journal"))
        try journal.seekToEnd()
        try journal.write(contentsOf: Data(line.utf8))
        try journal.close()
        try f.daemon.start()
        #expect(f.daemon.log().contains("completed the extend of io-vm/firmware into PCR 9"))
        f.daemon.stop()
        let nine = try Self.readPCRs(tcti, [9])[9]!
        #expect(nine == Hex.encode(Array(SHA256.hash(data: [UInt8](repeating: 0, count: 32) + digest.bytes))))

        // Someone else extends PCR 8: the journal no longer explains it, and ukeyd refuses to start.
        let extended = try Self.pcrextend.run(["-T", tcti, "8:sha256=" + String(repeating: "ab", count: 32)])
        #expect(extended.status == 0, "\(extended.stderr)")
        #expect(throws: (any Error).self) { try f.daemon.start() }
        #expect(f.daemon.log().contains("PCR 8 holds"), "the reason is in the log")
    }

    @Test(
        "concurrent measurements from many connections, batched: the PCRs equal the event log's replay and the journal's, and every call was answered"
    )
    func concurrentMeasurements() throws {
        let f = try DaemonFixture(backend: .tpm)
        let tcti = f.daemon.tpm!.tcti
        let kernel = try f.expected("vmm", "kernel")
        let qemu = try f.expected("vmm", "qemu")
        let answered = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            guard let connection = try? f.daemon.connect() else { return }
            for round in 0..<40 {
                let (component, digest) = (worker + round) % 2 == 0 ? ("kernel", kernel) : ("qemu", qemu)
                if let reply = try? connection.call(
                    "io.ukey.Boot.Measure",
                    ["entity": "vmm", "component": .string(component), "digest": .string(digest)]
                ),
                    reply["register"] == 8
                {
                    answered.add()
                }
            }
        }
        #expect(answered.value == 320)
        let log = try EventLog(
            parsing: Array(Data(base64Encoded: try f.daemon.call("io.ukey.Boot.EventLog")["data"]!.stringValue!)!)
        )
        #expect(log.events.count == 320)
        let replayed = log.replay().banks[.sha256]!.values
        f.daemon.stop()
        #expect(try Self.readPCRs(tcti, [8])[8] == Hex.encode(replayed[8]))
        try f.daemon.start()  // the journal replays to the same PCR, or this start would refuse
        #expect(try f.daemon.call("io.ukey.Admin.Status")["measurements"] == 320)
    }

    @Test("the store key is sealed to the TPM: the state directory on another TPM does not open, nor with keys = soft")
    func storeSealedToTPM() throws {
        let f = try DaemonFixture(backend: .tpm)
        f.daemon.stop()
        let other = try SoftwareTPM()
        defer { other.stop() }
        let run = try TemporaryDirectory("ukeyd-run")
        func attempt(_ extra: [String]) throws -> ExternalTool.Result {
            try ExternalTool.run(
                PackagePaths.builtProduct("ukeyd"),
                [
                    "--state-dir", f.daemon.stateDirectory, "--runtime-dir", run.path, "--socket",
                    run.file("ukeyd.sock"),
                ] + extra
            )
        }
        let elsewhere = try attempt(["--registers", "tpm", "--keys", "tpm", "--tcti", other.tcti])
        #expect(elsewhere.status == 1)
        #expect((elsewhere.stdout + elsewhere.stderr).contains("does not unseal with tpm"), "\(elsewhere.stderr)")
        let soft = try attempt([])
        #expect(soft.status == 1)
        #expect((soft.stdout + soft.stderr).contains("sealed by 'tpm'"), "\(soft.stderr)")
        try f.daemon.start()  // on its own TPM it opens
        #expect(try f.daemon.call("io.ukey.Admin.Status")["initialized"] == true)
    }

    @Test("a policy naming a firmware PCR (0-7) or a locality PCR (17-22) is refused; the old one stays")
    func firmwarePCRsRefused() throws {
        let f = try DaemonFixture(backend: .tpm)
        for register in [7, 17] {
            let text = f.policyText.replacingOccurrences(of: "version: 1", with: "version: 2")
                .replacingOccurrences(of: "kind: host\n    register: 8", with: "kind: host\n    register: \(register)")
            #expect { try f.loadPolicy(text) } throws: { error in
                guard let error = error as? VarlinkError, error.name == "io.ukey.Admin.PolicyRejected" else {
                    return false
                }
                // 0-7 the linter refuses for every backend; 17-22 the tpm registers cannot extend.
                let reason = error.parameters["reason"]?.stringValue ?? ""
                return register == 7
                    ? reason.contains("register 7 of 'vmm' is out of range")
                    : reason.contains("uses register 17, which the tpm registers cannot extend")
            }
        }
        #expect(try f.daemon.call("io.ukey.Admin.Status")["policyVersion"] == 1)
    }

    @Test(
        "the TPM going away: measurements and logins fail with Token.Unavailable and are not taken, the rest is served; a TPM that comes back reset is refused"
    )
    func tpmGoesAway() throws {
        let f = try DaemonFixture(backend: .tpm)
        try f.measureByPath("vmm")
        f.daemon.tpm!.stop()
        let isUnavailable = { (error: any Error) -> Bool in
            (error as? VarlinkError)?.name == "io.ukey.Token.Unavailable"
                && (error as? VarlinkError)?.parameters["reason"]?.stringValue?.contains("TPM") == true
        }
        #expect { try f.measureByPath("io-vm") } throws: { isUnavailable($0) }
        #expect { try f.daemon.call("io.ukey.Boot.Quote", ["nonce": "AQID"]) } throws: { isUnavailable($0) }
        // What needs no TPM goes on: the chain, exec checks, the audit trail.
        #expect(
            try f.state("vmm").state == "trusted" && f.state("io-vm").state == "pending",
            "the failed measurement was not taken"
        )
        // A login moves the PIN retry counter, which the store keeps bound to the TPM's NV
        // counter: without the TPM it fails closed, saying so.
        #expect { try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"]) } throws: {
            isUnavailable($0)
        }
        _ = try f.daemon.call(
            "io.ukey.Runtime.CheckExec",
            ["vm": "office", "path": "/usr/bin/nc", "digest": .string("sha256:" + String(repeating: "2", count: 64))]
        )
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)
        // A new user's certificate needs the root CA's key, which is in the TPM: refused, and
        // nothing is stored.
        #expect {
            try f.daemon.call("io.ukey.Admin.AddUser", ["user": "dave", "pin": "dave-pin-12", "roles": ["office"]])
        } throws: { isUnavailable($0) }
        #expect(throws: VarlinkError.self) { try f.daemon.call("io.ukey.Token.Certificate", ["name": "dave"]) }
        #expect(f.daemon.exitStatus == nil, "ukeyd is still running")

        // The TPM restarts (its PCRs back at zero): measuring on would give registers the log
        // cannot explain, so ukeyd refuses, saying why.
        try f.daemon.tpm!.restart()
        #expect { try f.measureByPath("io-vm") } throws: { error in
            isUnavailable(error) && "\(error)".contains("PCR 8 holds")
        }
        #expect(f.daemon.exitStatus == nil)
    }

    @Test(
        "keys on the TPM: random bytes from TPM2_GetRandom; audit checkpoints signed by the TPM's key verify through ukeyd after a restart and offline"
    )
    func keysOnTPM() throws {
        let f = try DaemonFixture(backend: .tpm)
        let random = Data(
            base64Encoded: try f.daemon.call("io.ukey.Token.Random", ["bytes": 64])["data"]!.stringValue!
        )!
        #expect(random.count == 64 && random != Data(count: 64))
        // They come from the TPM: with the TPM stopped there are none (software randomness would
        // still answer).
        f.daemon.tpm!.stop()
        #expect { try f.daemon.call("io.ukey.Token.Random", ["bytes": 64]) } throws: {
            (($0 as? VarlinkError)?.name ?? "") == "io.ukey.Token.Unavailable"
        }
        try f.daemon.tpm!.restart()
        let work = try TemporaryDirectory()
        let pem = try #require(try f.daemon.call("io.ukey.Token.Certificate", ["name": "audit"])["pem"]?.stringValue)
        try pem.write(toFile: work.file("audit.pem"), atomically: true, encoding: .utf8)
        #expect(pem.contains("BEGIN CERTIFICATE"))
        f.daemon.stop()  // the final checkpoint, signed in the TPM
        try f.daemon.start()
        let verified = try f.daemon.call("io.ukey.Audit.Verify")
        #expect(verified["ok"] == true && (verified["checkpoints"]?.intValue ?? 0) >= 1, "\(verified)")
        #expect(
            try f.daemon.call("io.ukey.Token.Certificate", ["name": "audit"])["pem"]?.stringValue == pem,
            "the TPM derives the same audit key each time"
        )
        f.daemon.stop()
        let offline = try ExternalTool.run(
            Self.ukeyctl,
            ["audit", "verify", "--log", f.daemon.stateDirectory + "/audit.log", "--cert", work.file("audit.pem")]
        )
        #expect(offline.status == 0, "\(offline.stdout)\(offline.stderr)")
    }

    /// The review's finding: restoring an older copy of the state directory restored PIN retry
    /// counters and let the audit log be cut to match, and no NV counter existed.
    @Test(
        "the store is bound to the TPM's NV counter: an older copy of the state directory put back does not open ('rollback'); tpm2-tools sees the counter"
    )
    func rollbackRefused() throws {
        let f = try DaemonFixture(backend: .tpm)
        let state = f.daemon.stateDirectory
        let backup = f.daemon.directory.file("state-backup")
        f.daemon.stop()
        #expect(try ExternalTool.run("/bin/cp", ["-a", state, backup]).status == 0)
        try f.daemon.start()
        // A wrong PIN: the retry counter goes down, in the store (a change an attacker would undo).
        #expect(throws: VarlinkError.self) {
            try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "wrong-pin-0"])
        }
        f.daemon.stop()
        try FileManager.default.removeItem(atPath: state)
        #expect(try ExternalTool.run("/bin/cp", ["-a", backup, state]).status == 0)
        #expect(throws: TestDaemonError.self) { try f.daemon.start() }
        #expect(f.daemon.log().contains("rollback"), "\(f.daemon.log().suffix(600))")
        // The counter is an NV index of type counter, as tpm2-tools reads it.
        let tcti = f.daemon.tpm!.tcti
        let nv = try ExternalTool("tpm2_nvreadpublic").run(["-T", tcti, "0x1554b01"])
        #expect(
            nv.status == 0 && nv.stdout.contains("nt=0x1") && nv.stdout.contains("size: 8"),
            "\(nv.stdout)\(nv.stderr)"
        )
    }

    /// The token's TPM objects are derived from a secret in the state directory (`TPMObjectSecret`):
    /// without it ukeyd refuses to start, naming it, rather than make keys that are not the token's.
    @Test(
        "the token's TPM object secret is a 0600 file in the state directory; without it (a token from before, or the file lost) ukeyd refuses to start and says so; with it back, it starts"
    )
    func objectSecret() throws {
        let f = try DaemonFixture(backend: .tpm)
        let path = f.daemon.stateDirectory + "/tpm-object-secret"
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600 && (attributes[.size] as? Int) == 32)
        f.daemon.stop()
        #expect(rename(path, path + ".away") == 0)
        #expect(throws: TestDaemonError.self) { try f.daemon.start() }
        #expect(f.daemon.log().contains("tpm-object-secret is missing"), "\(f.daemon.log().suffix(600))")
        #expect(rename(path + ".away", path) == 0)
        try f.daemon.start()
        #expect(try f.daemon.call("io.ukey.Token.Info")["backend"] != nil)
    }

    @Test(
        "the CA keys live in the TPM: the root and sub-CA certificates name the TPM's keys, and users' certificates (before and after a restart) verify with openssl under the users policy"
    )
    func rootCAInTPM() async throws {
        let f = try DaemonFixture(backend: .tpm)
        let work = try TemporaryDirectory()
        func save(_ name: String) throws -> String {
            let pem = try #require(
                try f.daemon.call("io.ukey.Token.Certificate", ["name": .string(name)])["pem"]?.stringValue
            )
            try pem.write(toFile: work.file("\(name).pem"), atomically: true, encoding: .utf8)
            return pem
        }
        func opensslVerifies(_ name: String) throws -> Bool {
            let result = try ExternalTool("openssl").run([
                "verify", "-check_ss_sig", "-CAfile", work.file("root-ca.pem"), "-untrusted", work.file("user-ca.pem"),
                "-policy", CertificatePolicy.users.oid, "-explicit_policy", work.file("\(name).pem"),
            ])
            return result.status == 0 && result.stdout.contains("OK")
        }
        let root = try Certificate(pemEncoded: try save("root-ca"))
        let tokenKeysCA = try Certificate(pemEncoded: try save("token-keys-ca"))
        let userCA = try Certificate(pemEncoded: try save("user-ca"))
        _ = try save("alice")  // issued while the fixture provisioned the token
        #expect(try opensslVerifies("root-ca"))
        #expect(try opensslVerifies("alice"))
        // A user added to a running daemon: signed through the daemon's one TPM connection.
        f.daemon.stop()
        try f.daemon.start()
        try f.daemon.call("io.ukey.Admin.AddUser", ["user": "carol", "pin": "carol-pin-1", "roles": ["office"]])
        _ = try save("carol")
        #expect(try opensslVerifies("carol"))
        // The TPM derives the same key from the root CA template: the root certificate's.
        let tcti = f.daemon.tpm!.tcti
        f.daemon.stop()
        let tpm = try TPM(tcti: tcti, secret: try TPMObjectSecret.load(stateDirectory: f.daemon.stateDirectory))
        for (authority, certificate) in [
            (CertificateAuthorityKey.root, root), (.tokenKeys, tokenKeysCA), (.users, userCA),
        ] {
            let point = try await tpm.certificateAuthorityKey(authority)
            #expect(
                P256.Signing.PublicKey(certificate.publicKey)?.x963Representation == Data(point),
                "\(authority.rawValue)"
            )
        }
    }
}

/// A counter several threads add to.
final class LockedCounter: @unchecked Sendable {
    // @unchecked: `count` is guarded by `lock`.
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
