import Crypto
import Foundation
import Testing
import UkeyAudit
import UkeyClient
import UkeyTesting
import UkeyToken
import UkeyVarlink

@Suite("ukeyd audit trail", .serialized)
struct DaemonAuditTests {
    func records(_ daemon: TestDaemon, type: String? = nil) throws -> [[String: JSONValue]] {
        var all: [[String: JSONValue]] = []
        var since = 1
        while true {
            var parameters: [String: JSONValue] = ["since": .int(since), "limit": 1000]
            if let type { parameters["type"] = .string(type) }
            let page = try daemon.call("io.ukey.Audit.Query", parameters)
            let records = page["records"]?.arrayValue?.compactMap(\.objectValue) ?? []
            all += records
            guard records.count == 1000, let next = page["next"]?.intValue else { return all }
            since = next
        }
    }

    /// Mounting a tmpfs needs root: `make test` runs as root here and in CI (where a refusal fails the test).
    static var canMount: Bool { geteuid() == 0 || ExternalTool.inCI }

    @Test(
        "a full disk under the audit log: the call is answered io.ukey.AuditUnavailable, not acknowledged, the log takes nothing more; with space back, a restart keeps every acknowledged record and verifies",
        .enabled(if: canMount, "mounting a small tmpfs needs root (make test runs as root)")
    )
    func fullDisk() throws {
        let f = try DaemonFixture()
        // The state directory moves onto a 24 MiB tmpfs of its own, so it can be filled.
        f.daemon.stop()
        let state = f.daemon.stateDirectory
        let aside = f.daemon.directory.file("state-aside")
        #expect(rename(state, aside) == 0 && mkdir(state, 0o700) == 0)
        let mount = try ExternalTool("mount").run(["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", state])
        try #require(mount.status == 0, "mount: \(mount.stderr)")
        defer {
            f.daemon.stop()
            _ = try? ExternalTool("umount").run([state])
        }
        #expect(try ExternalTool("cp").run(["-a", aside + "/.", state]).status == 0)
        try f.daemon.start()
        let deny = "sha256:" + String(repeating: "2", count: 64)
        func checkExec(_ n: Int) throws -> VarlinkReply {
            let connection = try f.daemon.connect()
            try connection.send(
                VarlinkCall(
                    method: "io.ukey.Runtime.CheckExec",
                    parameters: ["vm": "office", "path": .string("/usr/bin/full-\(n)"), "digest": .string(deny)]
                )
            )
            return try connection.receive()
        }
        #expect(try checkExec(0).parameters["decision"] == "deny")

        // Fill the filesystem.
        let filler = open(state + "/filler", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(filler >= 0)
        let chunk = [UInt8](repeating: 0, count: 1 << 16)
        while chunk.withUnsafeBytes({ write(filler, $0.baseAddress!, $0.count) }) > 0 {}
        #expect(errno == ENOSPC)
        close(filler)

        // Records may still fit in the log's last page; each call is acknowledged only if recorded.
        var acknowledged = [0]
        var refusal: VarlinkReply?
        for n in 1...2000 where refusal == nil {
            let reply = try checkExec(n)
            if reply.error == nil {
                #expect(reply.parameters["decision"] == "deny")
                acknowledged.append(n)
            } else {
                refusal = reply
            }
        }
        let refused = try #require(refusal, "2000 records were acknowledged on a full disk")
        print(
            "fullDisk: \(acknowledged.count - 1) calls acknowledged on the full disk before the first AuditUnavailable"
        )
        #expect(refused.error == "io.ukey.AuditUnavailable", "\(refused)")
        #expect(refused.parameters["reason"]?.stringValue?.contains("No space left on device") == true, "\(refused)")
        // The log has stopped: nothing more is acknowledged, even a call that changes nothing.
        #expect(try checkExec(5000).error == "io.ukey.AuditUnavailable")

        // Space back, ukeyd restarted: every acknowledged record is there and the log verifies.
        f.daemon.stop()
        #expect(unlink(state + "/filler") == 0)
        try f.daemon.start()
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)
        let recorded = Set(try records(f.daemon, type: "exec").compactMap { $0["subject"]?["path"]?.stringValue })
        let missing = acknowledged.filter { !recorded.contains("/usr/bin/full-\($0)") }
        #expect(missing.isEmpty, "acknowledged but not in the log: \(missing)")
        #expect(!recorded.contains("/usr/bin/full-5000"))
    }

    @Test("calls leave the records the issue lists, durable, and the trail verifies; edits and truncation are caught")
    func trail() throws {
        let f = try DaemonFixture()
        try f.bootHost()
        _ = try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])
        #expect { try f.daemon.call("io.ukey.Auth.Login", ["user": "bob", "pin": "wrong-p9"]) } throws: {
            VarlinkError.named("io.ukey.Auth.BadPin")($0)
        }
        _ = try f.daemon.call(
            "io.ukey.Runtime.CheckExec",
            ["vm": "office", "path": "/usr/bin/nc", "digest": .string("sha256:" + String(repeating: "2", count: 64))]
        )
        _ = try f.daemon.call("io.ukey.Admin.SetMode", ["mode": "audit"])
        #expect {
            try f.loadPolicy(
                f.policyText.replacingOccurrences(of: "version: 1", with: "version: 2"),
                signature: try f.sign("something else")
            )
        } throws: { VarlinkError.named("io.ukey.Admin.PolicyRejected")($0) }
        let all = try records(f.daemon)
        let types = all.map { $0["type"]?.stringValue ?? "" }
        for expected in ["daemon-start", "initialize", "policy-load", "user-add", "measure", "login", "exec", "mode"] {
            #expect(types.contains(expected), "no \(expected) record in \(types)")
        }
        #expect(all.map { $0["seq"]?.intValue ?? 0 } == Array(1...all.count))
        let logins = try records(f.daemon, type: "login").map { $0["subject"]?["outcome"]?.stringValue }
        #expect(logins == ["success", "bad-pin"])
        let rejected = try records(f.daemon, type: "policy-load").last?["subject"]
        #expect(rejected?["outcome"] == "rejected")
        #expect(rejected?["reason"]?.stringValue?.contains("signature") == true)
        let measure = try #require(try records(f.daemon, type: "measure").first)
        #expect(measure["actor"]?["uid"]?.intValue == Int(getuid()))
        #expect(
            measure["subject"]?["digest"]?.stringValue?.hasPrefix(f.daemon.backend == .sm2 ? "sm3:" : "sha256:") == true
        )
        #expect(
            !String(
                decoding: try Data(contentsOf: URL(fileURLWithPath: f.daemon.stateDirectory + "/audit.log")),
                as: UTF8.self
            ).contains("alice-p1")
        )
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)

        // A clean stop ends with daemon-stop and a checkpoint; the log verifies after a restart.
        f.daemon.stop()
        let path = f.daemon.stateDirectory + "/audit.log"
        var lines = try Data(contentsOf: URL(fileURLWithPath: path)).split(separator: 0x0A).map(Array.init)
        #expect(lines.last.map { String(decoding: $0, as: UTF8.self).contains(#""type":"checkpoint""#) } == true)
        try f.daemon.start()
        let verified = try f.daemon.call("io.ukey.Audit.Verify")
        #expect(verified["ok"] == true)
        #expect(verified["unsignedTail"] == 1)  // the new daemon-start

        // An edited record deep in the log: the daemon starts (it checks the tail) but Verify names it.
        f.daemon.stop()
        lines = try Data(contentsOf: URL(fileURLWithPath: path)).split(separator: 0x0A).map(Array.init)
        lines[4][30] ^= 0x01
        try Data(lines.joined(separator: [0x0A]) + [0x0A]).write(to: URL(fileURLWithPath: path))
        try f.daemon.start()
        let edited = try f.daemon.call("io.ukey.Audit.Verify")
        #expect(edited["ok"] == false)
        #expect(edited["firstBad"] == 5)

        // Cut below the sealed checkpoint: the daemon refuses to start, saying so.
        f.daemon.stop()
        try Data(lines.prefix(3).joined(separator: [0x0A]) + [0x0A]).write(to: URL(fileURLWithPath: path))
        #expect(throws: (any Error).self) { try f.daemon.start() }
        #expect(f.daemon.log().contains("cut off the end") || f.daemon.log().contains("sealed checkpoint"))
    }

    @Test("kill -9 at 100 random points under load: every acknowledged record survives and the log verifies")
    func killUnderLoad() throws {
        let f = try DaemonFixture()
        let path = f.daemon.stateDirectory + "/audit.log"
        var acknowledged: Set<String> = []
        var total = 0
        for round in 0..<100 {
            if round > 0 { try f.daemon.start() }
            let connection = try f.daemon.connect()
            let pid = f.daemon.pid
            let delay = UInt32.random(in: 2_000...40_000)
            let killer = Thread {
                usleep(delay)
                kill(pid, SIGKILL)
            }
            killer.start()
            var n = 0
            load: while true {
                // Pipelined bursts: the replies of a burst share fsyncs.
                var sent: [String] = []
                for _ in 0..<16 {
                    let execPath = "/load/\(round)/\(n)"
                    n += 1
                    do {
                        try connection.send(
                            VarlinkCall(
                                method: "io.ukey.Runtime.CheckExec",
                                parameters: [
                                    "vm": "office", "path": .string(execPath),
                                    "digest": .string("sha256:" + String(repeating: "3", count: 64)),
                                ]
                            )
                        )
                    } catch { break }
                    sent.append(execPath)
                }
                for execPath in sent {
                    guard let reply = try? connection.receive() else { break load }
                    #expect(reply.error == nil)
                    acknowledged.insert(execPath)
                    total += 1
                }
                if sent.count < 16 { break }
            }
            f.daemon.kill9()
            while killer.isExecuting { usleep(1000) }
            // It died of our SIGKILL, never of a crash of its own under load.
            #expect(
                f.daemon.terminatingSignal == SIGKILL,
                "round \(round): ukeyd ended with status \(f.daemon.exitStatus.map(String.init) ?? "?"), not SIGKILL"
            )
        }
        try f.daemon.start()
        let verified = try f.daemon.call("io.ukey.Audit.Verify")
        #expect(verified["ok"] == true, "\(verified)")
        var recorded: Set<String> = []
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        for line in data.split(separator: 0x0A) {
            if let object = try? VarlinkCodec.parseObject(Array(line)), let p = object["subject"]?["path"]?.stringValue
            {
                recorded.insert(p)
            }
        }
        let lost = acknowledged.subtracting(recorded)
        #expect(lost.isEmpty, "\(lost.count) acknowledged records lost, e.g. \(lost.prefix(3))")
        #expect(total > 100, "too little load to mean anything: \(total) acknowledged calls")
    }

    /// The review's finding: after a kill -9, two acknowledged exec denials deleted from the end
    /// of the log went unnoticed (they came after the last sealed checkpoint).
    @Test("acknowledged records cut from the end after a kill -9 stop the start, naming them; put back, the log opens")
    func cutTailAfterCrash() throws {
        let f = try DaemonFixture()
        for tool in ["nc", "socat"] {
            let reply = try f.daemon.call(
                "io.ukey.Runtime.CheckExec",
                [
                    "vm": "office", "path": .string("/usr/bin/\(tool)"),
                    "digest": .string("sha256:" + String(repeating: "3", count: 64)),
                ]
            )
            #expect(reply["decision"] == "deny")
        }
        f.daemon.kill9()
        let path = f.daemon.stateDirectory + "/audit.log"
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        var lines = original.split(separator: 0x0A).map { Array($0) }
        #expect(String(decoding: lines.last!, as: UTF8.self).contains("/usr/bin/socat"))
        let total = lines.count
        lines.removeLast(2)
        try Data(lines.joined(separator: [0x0A]) + [0x0A]).write(to: URL(fileURLWithPath: path))
        #expect(throws: TestDaemonError.self) { try f.daemon.start() }
        #expect(f.daemon.log().contains("records \(total - 1)-\(total) are missing"), "\(f.daemon.log().suffix(800))")
        try original.write(to: URL(fileURLWithPath: path))
        try f.daemon.start()
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)
    }

    /// The review's finding: one idle follower on a 60 MB log cost 31% of a core, since every
    /// 200 ms poll reread the log from byte 0.
    @Test("an idle follower of a large log costs next to nothing, and still gets the next record at once")
    func idleFollowerIsCheap() throws {
        let f = try DaemonFixture()
        // 48,000 distinct denials (a repeated one is counted, not written again).
        for batch in 0..<8 {
            let items: [JSONValue] = (0..<6_000).map { n in
                [
                    "vm": "office", "path": .string("/usr/bin/unknown-\(batch)-\(n)"),
                    "digest": .string("sha256:" + String(repeating: "4", count: 64)),
                ]
            }
            _ = try f.daemon.connect(timeout: 120).call("io.ukey.Runtime.CheckExecBatch", ["items": .array(items)])
        }
        let logBytes =
            (try FileManager.default.attributesOfItem(atPath: f.daemon.stateDirectory + "/audit.log")[.size] as? Int)
            ?? 0
        #expect(logBytes > 10 << 20, "the log is \(logBytes) bytes")
        let next = try f.daemon.call("io.ukey.Audit.Query", ["since": 40_000, "limit": 1000])["next"]!.intValue!
        let follower = try f.daemon.connect(timeout: 30)
        try follower.send(
            VarlinkCall(method: "io.ukey.Audit.Query", parameters: ["since": .int(next), "type": "mode"], more: true)
        )
        usleep(500_000)  // its first look (one scan up to `since`) is done
        let before = Self.cpuSeconds(f.daemon.pid)
        usleep(3_000_000)
        let idle = Self.cpuSeconds(f.daemon.pid) - before
        print(
            "ukeyd CPU with one idle follower on a \(logBytes >> 20) MB log: \(String(format: "%.3f", idle)) s in 3 s"
        )
        // Before, each 200 ms poll reread the whole log: about 30% of a core, ~0.9 s here.
        #expect(idle < 0.3, "ukeyd spent \(idle) s of CPU in 3 s with one idle follower")
        _ = try f.daemon.call("io.ukey.Admin.SetMode", ["mode": "audit"])
        let reply = try follower.receive()
        #expect(reply.continues && reply.parameters["records"]?.arrayValue?.first?["subject"]?["mode"] == "audit")
    }

    /// User plus system CPU time of a process, in seconds.
    static func cpuSeconds(_ pid: Int32) -> Double {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Fills the log past a few 64 KiB rotations with records nothing aggregates (mode changes).
    static func fill(_ f: DaemonFixture, records: Int = 900) throws {
        let connection = try f.daemon.connect()
        for n in 0..<records {
            _ = try connection.call("io.ukey.Admin.SetMode", ["mode": n % 2 == 0 ? "audit" : "enforce"])
        }
    }

    @Test(
        "past [audit] max-size the log is archived and continued: the daemon verifies the chain and restarts; offline, the directory, the current file and the list of files verify"
    )
    func rotation() throws {
        let f = try DaemonFixture(arguments: ["--audit-max-size", "65536"])
        try Self.fill(f)
        let state = f.daemon.stateDirectory
        let archives = try FileManager.default.contentsOfDirectory(atPath: state).filter { $0.hasPrefix("audit-") }
            .sorted()
        #expect(archives.count >= 2, "\(archives)")
        let verified = try f.daemon.call("io.ukey.Audit.Verify")
        #expect(verified["ok"] == true && verified["files"]?.arrayValue?.count == archives.count + 1, "\(verified)")
        let pem = try #require(try f.daemon.call("io.ukey.Token.Certificate", ["name": "audit"])["pem"]?.stringValue)
        let work = try TemporaryDirectory()
        try pem.write(toFile: work.file("audit.pem"), atomically: true, encoding: .utf8)
        f.daemon.stop()
        let ukeyctl = PackagePaths.builtProduct("ukeyctl")
        for given in [[state], [state + "/audit.log"], (archives + ["audit.log"]).map { state + "/" + $0 }] {
            let result = try ExternalTool.run(
                ukeyctl,
                ["audit", "verify", "--cert", work.file("audit.pem")] + given.flatMap { ["--log", $0] }
            )
            #expect(
                result.status == 0 && result.stdout.contains("in \(archives.count + 1) file(s)"),
                "\(given): \(result.stdout)\(result.stderr)"
            )
        }
        try f.daemon.start()
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)
        // Queries read the current file, which begins by naming the newest archive.
        let first = try f.daemon.call("io.ukey.Audit.Query", ["since": 1, "limit": 1])["records"]?.arrayValue?.first
        #expect(
            first?["type"] == "rotated" && first?["subject"]?["previous"] == .string(archives.last ?? ""),
            "\(String(describing: first))"
        )
    }

    @Test(
        "an archive moved out of the state directory, or cut back to an earlier checkpoint, fails Audit.Verify and ukeyctl audit verify --log, naming it; with keep-archives, removed archives are reported as removed by retention, with their last hash"
    )
    func archivesInTheCheck() throws {
        let f = try DaemonFixture(arguments: ["--audit-max-size", "65536"])
        try Self.fill(f)
        let state = f.daemon.stateDirectory
        let archives = try FileManager.default.contentsOfDirectory(atPath: state).filter { $0.hasPrefix("audit-") }
            .sorted()
        #expect(archives.count >= 2, "\(archives)")
        let pem = try #require(try f.daemon.call("io.ukey.Token.Certificate", ["name": "audit"])["pem"]?.stringValue)
        let work = try TemporaryDirectory()
        try pem.write(toFile: work.file("audit.pem"), atomically: true, encoding: .utf8)
        let ukeyctl = PackagePaths.builtProduct("ukeyctl")
        func offline() throws -> ExternalTool.Result {
            try ExternalTool.run(ukeyctl, ["audit", "verify", "--log", state, "--cert", work.file("audit.pem")])
        }

        let oldest = archives[0]
        #expect(rename(state + "/" + oldest, work.file(oldest)) == 0)
        let online = try f.daemon.call("io.ukey.Audit.Verify")
        #expect(
            online["ok"] == false && online["reason"]?.stringValue?.contains("\(oldest)") == true
                && online["reason"]?.stringValue?.contains("missing") == true,
            "\(online)"
        )
        let moved = try offline()
        #expect(
            moved.status == 1 && moved.stdout.contains(oldest) && moved.stdout.contains("missing"),
            "\(moved.stdout)\(moved.stderr)"
        )
        #expect(rename(work.file(oldest), state + "/" + oldest) == 0)

        // Cut back to its first half: a valid log on its own (its chain intact, its tail
        // unsigned), no longer the chain's.
        let text = try String(contentsOfFile: state + "/" + oldest, encoding: .utf8)
        let lines = text.split(separator: "\n")
        try (lines.prefix(lines.count / 2).joined(separator: "\n") + "\n").write(
            toFile: state + "/" + oldest,
            atomically: false,
            encoding: .utf8
        )
        let cut = try f.daemon.call("io.ukey.Audit.Verify")
        #expect(cut["ok"] == false && cut["reason"]?.stringValue?.contains("cut short") == true, "\(cut)")
        let cutOffline = try offline()
        #expect(
            cutOffline.status == 1 && cutOffline.stdout.contains("\(oldest) is cut short"),
            "\(cutOffline.stdout)\(cutOffline.stderr)"
        )
        try text.write(toFile: state + "/" + oldest, atomically: false, encoding: .utf8)
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)

        // Retention: one archive kept; what it removes is recorded, and reported as such.
        f.daemon.stop()
        f.daemon.extraArguments += ["--audit-keep-archives", "1"]
        try f.daemon.start()
        try Self.fill(f, records: 400)
        let left = try FileManager.default.contentsOfDirectory(atPath: state).filter { $0.hasPrefix("audit-") }
        #expect(left.count == 1, "\(left)")
        let retained = try f.daemon.call("io.ukey.Audit.Verify")
        let removed = retained["removedByRetention"]?.arrayValue ?? []
        #expect(
            retained["ok"] == true && removed.count == 1 && removed.first?["head"]?.stringValue?.count == 64,
            "\(retained)"
        )
        // The current file holds the latest removals (earlier ones went with the files retention removed since).
        let removals =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "archive-removed", "limit": 100])["records"]?.arrayValue
            ?? []
        #expect(
            !removals.isEmpty
                && removals.allSatisfy {
                    $0["subject"]?["sha256"]?.stringValue?.count == 64
                        && $0["subject"]?["retention"] == "keep-archives=1"
                },
            "\(removals)"
        )
        #expect(
            removals.contains {
                $0["subject"]?["archive"] == removed.first?["archive"]
                    && $0["subject"]?["head"] == removed.first?["head"]
            }
        )
        let reported = try offline()
        #expect(
            reported.status == 0 && reported.stdout.contains("removed by retention"),
            "\(reported.stdout)\(reported.stderr)"
        )
    }

    @Test("follow streams new records as they become durable")
    func follow() throws {
        let f = try DaemonFixture()
        let follower = try f.daemon.connect()
        let start = try f.daemon.call("io.ukey.Audit.Query", ["since": 1, "limit": 1000])["next"]!.intValue!
        try follower.send(
            VarlinkCall(method: "io.ukey.Audit.Query", parameters: ["since": .int(start), "type": "mode"], more: true)
        )
        _ = try f.daemon.call("io.ukey.Admin.SetMode", ["mode": "audit"])
        let reply = try follower.receive()
        #expect(reply.continues)
        #expect(reply.parameters["records"]?.arrayValue?.first?["subject"]?["mode"] == "audit")
    }
}

@Suite("ukeyctl audit verify, offline")
struct AuditOfflineTests {
    @Test(
        "a copy of the log verifies with the audit certificate alone, or with its chain to the root; an edited copy fails at the edited record; a user's certificate or another token's audit certificate does not verify it"
    )
    func offline() async throws {
        let f = try DaemonFixture()
        try f.bootHost()
        let work = try TemporaryDirectory()
        func certificate(_ name: String) throws -> String {
            try #require(try f.daemon.call("io.ukey.Token.Certificate", ["name": .string(name)])["pem"]?.stringValue)
        }
        let pem = try certificate("audit")
        try pem.write(toFile: work.file("audit.pem"), atomically: true, encoding: .utf8)
        try (pem + certificate("token-keys-ca")).write(
            toFile: work.file("audit-chain.pem"),
            atomically: true,
            encoding: .utf8
        )
        try certificate("root-ca").write(toFile: work.file("root-ca.pem"), atomically: true, encoding: .utf8)
        try (certificate("alice") + certificate("user-ca")).write(
            toFile: work.file("alice.pem"),
            atomically: true,
            encoding: .utf8
        )
        f.daemon.stop()
        let ukeyctl = PackagePaths.builtProduct("ukeyctl")
        let log = f.daemon.stateDirectory + "/audit.log"
        let good = try ExternalTool.run(ukeyctl, ["audit", "verify", "--log", log, "--cert", work.file("audit.pem")])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("verified"))

        var lines = try Data(contentsOf: URL(fileURLWithPath: log)).split(separator: 0x0A).map(Array.init)
        let index = try #require(
            lines.firstIndex { String(decoding: $0, as: UTF8.self).contains(#""type":"measure""#) }
        )
        lines[index] = Array(
            String(decoding: lines[index], as: UTF8.self).replacingOccurrences(
                of: "\"load\":true",
                with: "\"load\":false"
            ).utf8
        )
        try Data(lines.joined(separator: [0x0A]) + [0x0A]).write(to: URL(fileURLWithPath: work.file("edited.log")))
        let bad = try ExternalTool.run(
            ukeyctl,
            ["audit", "verify", "--log", work.file("edited.log"), "--cert", work.file("audit.pem")]
        )
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("FAILED at record \(index + 1)"), "\(bad.stdout)")

        // With the token's root, the audit certificate's path and policy are checked too.
        let chained = try ExternalTool.run(
            ukeyctl,
            [
                "audit", "verify", "--log", log, "--cert", work.file("audit-chain.pem"), "--root-ca",
                work.file("root-ca.pem"),
            ]
        )
        #expect(chained.status == 0, "\(chained.stdout)\(chained.stderr)")
        let unchained = try ExternalTool.run(
            ukeyctl,
            ["audit", "verify", "--log", log, "--cert", work.file("audit.pem"), "--root-ca", work.file("root-ca.pem")]
        )
        #expect(unchained.status == 1 && unchained.stdout.contains("in the chain"), "\(unchained.stdout)")
        // A user's certificate of the same token is never taken for the audit key's.
        let user = try ExternalTool.run(
            ukeyctl,
            ["audit", "verify", "--log", log, "--cert", work.file("alice.pem"), "--root-ca", work.file("root-ca.pem")]
        )
        #expect(user.status == 1 && user.stdout.contains("not an audit key's"), "\(user.stdout)")
        // Another token's real audit certificate does not verify the checkpoints.
        var configuration = SoftToken.Configuration(stateDirectory: work.file("other-token"))
        configuration.kdf = .fastForTests
        let signer = try IdentityCA.makeRoot(key: P256.Signing.PrivateKey(), commonName: "other signer", now: Date())
        let otherToken = try await SoftToken.initialize(
            configuration,
            soPIN: "so-secret-42",
            policySigner: signer,
            bootID: "b"
        )
        let otherAudit = try IdentityCA.pem(await otherToken.certificate(named: "audit"))
        try otherAudit.write(toFile: work.file("other-audit.pem"), atomically: true, encoding: .utf8)
        let other = try ExternalTool.run(
            ukeyctl,
            ["audit", "verify", "--log", log, "--cert", work.file("other-audit.pem")]
        )
        #expect(other.status == 1, "\(other.stdout)\(other.stderr)")
        // (An SM2 token's log against a P-256 certificate fails sooner: its checkpoints say sm2-sm3.)
        #expect(
            other.stdout.contains("FAILED")
                && (other.stdout.contains("signature") || other.stdout.contains("says it is signed sm2-sm3")),
            "\(other.stdout)"
        )
        // A file that is no certificate is a usage error.
        let missing = try ExternalTool.run(
            ukeyctl,
            ["audit", "verify", "--log", log, "--cert", work.file("nonexistent.pem")]
        )
        #expect(missing.status == 2)
    }
}

@Suite("ukeyd audit settings")
struct AuditSettingsTests {
    @Test(
        "exec-allows: none records only denials, all records every decision, sampled one in N; batches are recorded per item"
    )
    func execAllows() throws {
        let settings = [
            ("exec-allows = \"none\"", 0),
            ("exec-allows = \"all\"", 4),
            ("exec-allows = \"sampled\"\nexec-allow-sample = 2", 2),
        ]
        for (setting, expectedAllows) in settings {
            let config = try TemporaryDirectory()
            try "[audit]\n\(setting)\n".write(toFile: config.file("ukeyd.toml"), atomically: true, encoding: .utf8)
            let f = try DaemonFixture(arguments: ["--config", config.file("ukeyd.toml")])
            try f.bootHost()
            let alice = try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]!
                .stringValue!
            try f.measureByPath("office", session: alice)
            let soffice = "sha256:5f0c3c1e2c0a3b1f3e1c55f2b3e2c1f0a9d8c7b6a5f4e3d2c1b0a99887766554"
            for _ in 0..<2 {
                _ = try f.daemon.call(
                    "io.ukey.Runtime.CheckExec",
                    ["vm": "office", "path": "/usr/bin/soffice", "digest": .string(soffice)]
                )
            }
            _ = try f.daemon.call(
                "io.ukey.Runtime.CheckExecBatch",
                [
                    "items": [
                        ["vm": "office", "path": "/usr/bin/soffice", "digest": .string(soffice)],
                        ["vm": "office", "path": "/usr/bin/nc", "digest": .string(soffice)],
                        ["vm": "office", "path": "/usr/bin/soffice", "digest": .string(soffice)],
                    ]
                ]
            )
            let records =
                try f.daemon.call("io.ukey.Audit.Query", ["type": "exec", "limit": 1000])["records"]?.arrayValue ?? []
            let allows = records.filter { $0["subject"]?["decision"] == "allow" }.count
            let denies = records.filter { $0["subject"]?["decision"] == "deny" }
            #expect(allows == expectedAllows, "\(setting)")
            #expect(denies.count == 1)
            #expect(denies.first?["subject"]?["path"] == "/usr/bin/nc")
            #expect(denies.first?["subject"]?["reason"] == "not-whitelisted")
        }
        // A bad value is refused at start, naming the key.
        let config = try TemporaryDirectory()
        try "[audit]\nexec-allows = \"some\"\n".write(
            toFile: config.file("ukeyd.toml"),
            atomically: true,
            encoding: .utf8
        )
        #expect { try TestDaemon(arguments: ["--config", config.file("ukeyd.toml")]) } throws: { error in
            "\(error)".contains("'audit.exec-allows' must be one of all, sampled, none")
        }
    }
}

/// A collector of our own for forwarded audit records: a Unix datagram socket, read on its own
/// thread as records arrive (a datagram socket's queue is short, so an unread one would stall the
/// sender).
final class DatagramCollector: @unchecked Sendable {
    // @unchecked: `received` is guarded by `lock`; `fd` is set once.
    private let fd: Int32
    private let lock = NSLock()
    private var received: [[UInt8]] = []
    private let done = DispatchSemaphore(value: 0)

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard fd >= 0, bound == 0 else { throw TestDaemonError("cannot bind \(path)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 1 << 17)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    lock.withLock { received.append(Array(buffer[..<n])) }
                } else if n < 0, errno == EAGAIN || errno == EINTR {
                    if lock.withLock({ stopping }) { break }
                } else {
                    break
                }
            }
            done.signal()
        }.start()
    }

    private var stopping = false

    /// Everything received, once nothing more has come for a while.
    func finish() -> [[UInt8]] {
        var count = -1
        while true {
            usleep(300_000)
            let now = lock.withLock { received.count }
            if now == count { break }
            count = now
        }
        lock.withLock { stopping = true }
        done.wait()
        close(fd)
        return lock.withLock { received }
    }
}

@Suite("ukeyd audit forwarding", .serialized)
struct AuditForwardingTests {
    @Test(
        "[audit] forward: a real collector on a temp socket gets every record of the local log, in order, as the journal's native protocol (UKEY_SEQ, UKEY_HASH) or RFC 5424 syslog",
        arguments: ["journal", "syslog"]
    )
    func forwarding(destination: String) throws {
        let dir = try TemporaryDirectory("ukey-collector")
        let collector = try DatagramCollector(path: dir.file("collector.sock"))
        try "[audit]\nforward = \"\(destination)\"\nforward-socket = \"\(dir.file("collector.sock"))\"\n".write(
            toFile: dir.file("ukeyd.toml"),
            atomically: true,
            encoding: .utf8
        )
        let f = try DaemonFixture(arguments: ["--config", dir.file("ukeyd.toml")])
        try f.bootHost()
        _ = try? f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "wrong-p9"])
        _ = try f.daemon.call(
            "io.ukey.Runtime.CheckExec",
            ["vm": "office", "path": "/usr/bin/nc", "digest": .string("sha256:" + String(repeating: "2", count: 64))]
        )
        f.daemon.stop()
        let datagrams = collector.finish()
        let local = try Data(contentsOf: URL(fileURLWithPath: f.daemon.stateDirectory + "/audit.log")).split(
            separator: 0x0A
        ).map { Array($0) }
        #expect(local.count >= 15, "the calls above leave at least 15 records")

        var messages: [[UInt8]] = []
        for datagram in datagrams {
            let text = String(decoding: datagram, as: UTF8.self)
            switch destination {
            case "journal":
                // Native protocol: KEY=VALUE lines, MESSAGE last here.
                let fields = Dictionary(
                    text.split(separator: "\n").map { line -> (String, String) in
                        let parts = line.split(separator: "=", maxSplits: 1)
                        return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
                    },
                    uniquingKeysWith: { first, _ in first }
                )
                let message = fields["MESSAGE"] ?? ""
                messages.append(Array(message.utf8))
                let record = try JSONReader.parse(Array(message.utf8))
                #expect(fields["UKEY_SEQ"] == record["seq"]?.intValue.map(String.init), "\(text)")
                #expect(fields["UKEY_HASH"] == record["hash"]?.stringValue, "\(text)")
                #expect(fields["SYSLOG_IDENTIFIER"] == "ukeyd")
            default:
                // <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
                let parts = text.split(separator: " ", maxSplits: 7, omittingEmptySubsequences: false)
                #expect(
                    parts.count == 8 && parts[0] == "<86>1" && parts[3] == "ukeyd" && parts[5] == "audit"
                        && parts[6] == "-",
                    "\(text.prefix(120))"
                )
                messages.append(parts.count == 8 ? Array(parts[7].utf8) : [])
            }
        }
        // Record for record: the collector holds exactly the local log's lines, in its order.
        #expect(messages.count == local.count, "\(messages.count) forwarded, \(local.count) in the log")
        #expect(messages == local)
    }

    @Test("a collector that is not there costs the local log nothing: every call is answered and recorded")
    func collectorAway() throws {
        let dir = try TemporaryDirectory("ukey-collector")
        try "[audit]\nforward = \"journal\"\nforward-socket = \"\(dir.file("nobody.sock"))\"\n".write(
            toFile: dir.file("ukeyd.toml"),
            atomically: true,
            encoding: .utf8
        )
        let f = try DaemonFixture(arguments: ["--config", dir.file("ukeyd.toml")])
        try f.bootHost()
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)
        #expect(f.daemon.log().contains("cannot forward audit records to \(dir.file("nobody.sock"))"))
        #expect(try f.daemon.call("io.ukey.Admin.Status")["initialized"] == true)
    }
}
