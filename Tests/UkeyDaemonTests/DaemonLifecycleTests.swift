import Foundation
import Testing
import UkeyClient
import UkeyTesting
import UkeyVarlink

@Suite("ukeyd: life cycle")
struct DaemonLifecycleTests {
    @Test("SIGTERM stops it cleanly (exit 0) and removes nothing it should keep")
    func sigterm() throws {
        let daemon = try TestDaemon()
        daemon.stop()
        #expect(daemon.exitStatus == 0)
        #expect(daemon.log().contains("stopped"))
        try daemon.start()
        #expect(try daemon.call("org.varlink.service.GetInfo")["product"] == "ukeyd")
    }

    @Test("a stale socket is replaced, but a regular file at the socket path is never removed")
    func staleSocket() throws {
        let daemon = try TestDaemon()
        daemon.kill9()  // leaves the socket file behind
        #expect(FileManager.default.fileExists(atPath: daemon.socketPath))
        try daemon.start()
        daemon.stop()
        try Data("not a socket".utf8).write(to: URL(fileURLWithPath: daemon.socketPath))
        #expect(throws: TestDaemonError.self) { try daemon.start() }
        #expect(try String(contentsOfFile: daemon.socketPath, encoding: .utf8) == "not a socket")
        #expect(daemon.log().contains("exists and is not a socket; refusing to remove it"))
    }

    @Test("PINs never reach the log")
    func noSecretsInLogs() throws {
        let f = try DaemonFixture()
        _ = try? f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "wrong-pin-777"])
        _ = try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-pin-1"])
        _ = try? f.daemon.call("io.ukey.Admin.UnblockPin", ["user": "alice", "soPin": "wrong-so-pin", "newPin": "new-pin-888"])
        let log = f.daemon.log()
        #expect(log.contains("login: alice"))
        for secret in ["wrong-pin-777", "alice-pin-1", "wrong-so-pin", "new-pin-888", DaemonFixture.soPIN, "bob-pin-12"] {
            #expect(!log.contains(secret), "the log contains a PIN")
        }
    }
}
