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
        _ = try? f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "wrong-p7"])
        _ = try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])
        _ = try? f.daemon.call(
            "io.ukey.Admin.UnblockPin",
            ["user": "alice", "soPin": "wrongpuk", "newPin": "newpin88"]
        )
        let log = f.daemon.log()
        #expect(log.contains("login: alice"))
        for secret in ["wrong-p7", "alice-p1", "wrongpuk", "newpin88", DaemonFixture.soPIN, "bob-pin2"] {
            #expect(!log.contains(secret), "the log contains a PIN")
        }
    }
}

/// The review's finding: an oversized or unreadable `store.sealed` started the daemon as "not
/// initialised", and `Initialize` would then have overwritten it.
@Suite("ukeyd: a store it cannot read stops the start")
struct UnreadableStoreTests {
    @Test(
        "a token composition that protects nothing (keys in the TPM, the store opened by a file beside it) stops the start, saying why, before any TPM is opened"
    )
    func senselessCompositionRefused() throws {
        let daemon = try TestDaemon(backend: .soft)
        daemon.stop()
        daemon.extraArguments += [
            "--keys", "tpm", "--store", "device-key", "--tcti", "swtpm:path=/nonexistent/swtpm.sock",
        ]
        #expect(throws: TestDaemonError.self) { try daemon.start() }
        #expect(daemon.exitStatus == 1)
        #expect(
            daemon.log().contains("token.keys = \"tpm\" with token.store = \"device-key\""),
            "\(daemon.log().suffix(500))"
        )
        #expect(!daemon.log().contains("cannot reach the TPM"), "refused before connecting")
    }

    @Test("an oversized store, or something else in its place, stops ukeyd with the reason; nothing is overwritten")
    func unreadableStoreFailsClosed() throws {
        let daemon = try TestDaemon()
        daemon.stop()
        let path = daemon.stateDirectory + "/store.sealed"
        let oversized = Data(count: 16 << 20 + 1)
        #expect(
            FileManager.default.createFile(atPath: path, contents: oversized, attributes: [.posixPermissions: 0o600])
        )
        #expect(throws: TestDaemonError.self) { try daemon.start() }
        #expect(daemon.exitStatus == 1)
        #expect(daemon.log().contains("store.sealed"), "\(daemon.log().suffix(500))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == oversized, "the store was left as it was")
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(
            atPath: path,
            withIntermediateDirectories: false,
            attributes: [.posixPermissions: 0o700]
        )
        #expect(throws: TestDaemonError.self) { try daemon.start() }
        #expect(daemon.exitStatus == 1)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue)
    }
}
