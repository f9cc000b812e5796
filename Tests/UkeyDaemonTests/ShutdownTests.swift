import Foundation
import Testing
import UkeyClient
import UkeyTesting
import UkeyVarlink

/// The review's findings: with one idle client ukeyd did not exit within 15 s of SIGTERM (it
/// waited for the 60 s idle timeout, systemd killed it, the final checkpoint was never written);
/// queued logins of clients that had left delayed the stop by more than a minute; a flood of
/// logins from one peer delayed other users' logins by 18 s.
@Suite("ukeyd: a stop that waits for nobody idle")
struct ShutdownTests {
    @Test(
        "SIGTERM with 100 idle clients, 10 followers and abandoned logins: exit 0 within 2 s, followers get a last reply, the final checkpoint is written"
    )
    func stopsAtOnce() throws {
        let f = try DaemonFixture()
        let idle = try (0..<100).map { _ in try f.daemon.connect(timeout: 10) }
        for connection in idle { _ = try connection.call("org.varlink.service.GetInfo") }
        let followers = try (0..<10).map { _ in try f.daemon.connect(timeout: 10) }
        for follower in followers {
            try follower.send(VarlinkCall(method: "io.ukey.Audit.Query", parameters: ["since": 1], more: true))
            #expect(try follower.receive().continues)
        }
        // Clients that queue logins and hang up.
        for _ in 0..<5 {
            let gone = try f.daemon.connect()
            for _ in 0..<2 {
                try gone.send(
                    VarlinkCall(method: "io.ukey.Auth.Login", parameters: ["user": "bob", "pin": "bob-pin2"])
                )
            }
        }
        let started = Date()
        f.daemon.stop()
        let took = Date().timeIntervalSince(started)
        print("ukeyd stopped \(String(format: "%.2f", took)) s after SIGTERM with 100 idle clients and 10 followers")
        #expect(f.daemon.exitStatus == 0, "\(f.daemon.log().suffix(3000))")
        #expect(took < 2, "ukeyd took \(took) s to stop")
        // Each follower's stream ended with a reply that does not continue, then the close.
        for follower in followers {
            var last: VarlinkReply?
            while let reply = try? follower.receive() {
                last = reply
                if !reply.continues { break }
            }
            #expect(last.map { !$0.continues } == true)
        }
        // The idle connections were closed, not left to time out.
        #expect { try idle[0].receive() } throws: { error in
            if case .closed = error as? VarlinkConnection.Failure { return true }
            return false
        }
        // The log ends with the stop and a signed checkpoint, and verifies.
        let log = try String(contentsOfFile: f.daemon.stateDirectory + "/audit.log", encoding: .utf8)
        let types = log.split(separator: "\n").suffix(2).compactMap { line -> String? in
            guard let range = line.range(of: #""type":""#) else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "\"" })
        }
        #expect(types == ["daemon-stop", "checkpoint"], "\(types)")
        try f.daemon.start()
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)
        withExtendedLifetime(idle) {}
    }

    /// Found by a card run that crashed in exit with SIGSEGV: cancelling the SIGHUP task at the
    /// stop made its wait return as if the signal had come, so every stop ran a reload, which
    /// reached the card while pcsc-lite was being torn down.
    @Test("SIGTERM ends ukeyd with nothing of its own after the stop: no reload, exit 0")
    func nothingRunsAfterTheStop() throws {
        let f = try DaemonFixture()
        #expect(try f.daemon.call("io.ukey.Admin.Status")["initialized"] == true)
        f.daemon.stop()
        #expect(f.daemon.exitStatus == 0, "\(f.daemon.log().suffix(3000))")
        let lines = f.daemon.log().split(separator: "\n")
        let stopped = try #require(
            lines.lastIndex { $0.hasSuffix("[UkeyDaemon] stopped") },
            "ukeyd did not say it stopped:\n\(lines.suffix(10).joined(separator: "\n"))"
        )
        #expect(
            lines[(stopped + 1)...].isEmpty,
            "ukeyd went on after its stop:\n\(lines.suffix(40).joined(separator: "\n"))"
        )
    }

    @Test(
        "one process may have 2 logins waiting; more are refused with Auth.Busy at once, and another user's login is answered meanwhile"
    )
    func loginFloodIsBounded() throws {
        let f = try DaemonFixture()
        // Ten logins from this process, each on its own connection, sent before any answer.
        let flood = try (0..<10).map { _ in try f.daemon.connect(timeout: 60) }
        for connection in flood {
            try connection.send(
                VarlinkCall(method: "io.ukey.Auth.Login", parameters: ["user": "bob", "pin": "bob-pin2"])
            )
        }
        // alice logs in from another process (ukeyctl) while the flood is pending.
        let alice = try ExternalTool.run(
            PackagePaths.builtProduct("ukeyctl"),
            ["login", "alice", "--pin", "alice-p1", "--socket", f.daemon.socketPath]
        )
        #expect(alice.status == 0, "\(alice.stdout)\(alice.stderr)")
        var busy = 0
        var sessions = 0
        for connection in flood {
            let reply = try connection.receive()
            if reply.error == "io.ukey.Auth.Busy" { busy += 1 }
            if reply.parameters["session"] != nil { sessions += 1 }
        }
        #expect(busy >= 10 - LoginLimiterBound.perPeer && sessions >= 1, "busy \(busy), sessions \(sessions)")
        #expect(busy + sessions == 10)
    }
}

/// The daemon's per-process bound on waiting logins (`LoginLimiter.perPeer`).
enum LoginLimiterBound {
    static let perPeer = 2
}
