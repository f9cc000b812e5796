import Crypto
import Foundation
import Testing
import UkeyClient
import UkeyTesting
import UkeyVarlink

/// A session id is not a bearer token: it serves the uid that logged in. What a VM's start
/// carries (a domain's XML, which any local user may read) is a one-time ticket for that VM.
@Suite("ukeyd: sessions bound to who logged in, start tickets for one VM start")
struct SessionBindingTests {
    static let setpriv = ExternalTool("setpriv")

    /// Calls ukeyd as uid 65534 with group nogroup (the daemon's hypervisor group here) through
    /// the python varlink package: another uid than the one that logged in, with every role a
    /// hypervisor process has. Prints what each call answered.
    static let otherUid = """
        import json, sys, varlink
        address, credential, digest = "unix:" + sys.argv[1], sys.argv[2], sys.argv[3]
        out = {}
        def attempt(name, call):
            try:
                out[name] = call()
            except varlink.VarlinkError as error:
                out[name] = {"error": error.error(), "parameters": error.parameters()}
        with varlink.Client(address=address) as client:
            with client.open("io.ukey.Token") as token:
                attempt("sign", lambda: token.Sign(key="alice", digest="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", session=credential))
            with client.open("io.ukey.Boot") as boot:
                attempt("measure", lambda: boot.Measure(entity="office", component="overlay", digest=digest, session=credential))
            with client.open("io.ukey.Auth") as auth:
                attempt("logout", lambda: auth.Logout(session=credential))
        print(json.dumps(out))
        """

    static func asOtherUid(_ f: DaemonFixture, credential: String) throws -> [String: JSONValue] {
        _ = try f.openToOtherUsers()
        // The varlink package where uid 65534 can read it (install-deps.sh puts it in root's
        // python, which another uid may not reach), for the system's python.
        let located = try ExternalTool("python3").run([
            "-c", "import os, varlink; print(os.path.dirname(varlink.__file__))",
        ])
        let package = located.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(located.status == 0 && !package.isEmpty, "the python varlink package: \(located.stderr)")
        let modules = f.daemon.directory.file("python")
        try? FileManager.default.createDirectory(atPath: modules, withIntermediateDirectories: false)
        try? FileManager.default.copyItem(atPath: package, toPath: modules + "/varlink")
        _ = try ExternalTool.run("/bin/chmod", ["-R", "a+rX", modules])
        let result = try setpriv.run([
            "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "PYTHONPATH=\(modules)",
            "/usr/bin/python3", "-c", otherUid,
            f.daemon.socketPath, credential, try f.expected("office", "overlay"),
        ])
        #expect(result.status == 0, "\(result.stderr)")
        return try VarlinkCodec.parseObject(Array(result.stdout.utf8))
    }

    static func errorName(_ value: JSONValue?) -> String? { value?["error"]?.stringValue }

    @Test(
        "alice's session, presented by another uid (a hypervisor-group process), signs nothing, starts nothing and logs nobody out; her own uid still uses it",
        .enabled(if: setpriv.shouldRun, Comment(rawValue: setpriv.skipReason))
    )
    func sessionServesItsUid() throws {
        let f = try DaemonFixture(arguments: [
            "--socket-group", "nogroup", "--socket-mode", "0660", "--hypervisor-group", "nogroup",
        ])
        try f.bootHost()
        let session = try #require(
            try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]?.stringValue
        )
        let other = try Self.asOtherUid(f, credential: session)
        #expect(Self.errorName(other["sign"]) == "io.ukey.Token.SessionRequired", "\(other)")
        #expect(
            other["measure"]?["load"] == false && other["measure"]?["reason"] == "session-of-another-uid",
            "\(other)"
        )
        #expect(Self.errorName(other["logout"]) == "io.ukey.Token.SessionRequired", "\(other)")

        // The uid that logged in: the session is alive and serves it.
        let digest = Array(SHA256.hash(data: Array("a contract".utf8)))
        let signed = try f.daemon.call(
            "io.ukey.Token.Sign",
            ["key": "alice", "digest": .string(Data(digest).base64EncodedString()), "session": .string(session)]
        )
        #expect(signed["signature"] != nil)
        #expect(try f.measureByPath("office", session: session).allSatisfy { $0["load"] == true })
        // The refusal is audited with its reason.
        let measures =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "measure", "limit": 1000])["records"]?.arrayValue ?? []
        #expect(
            measures.contains { $0["subject"]?["reason"] == "session-of-another-uid" && $0["actor"]?["uid"] == 65534 }
        )
    }

    @Test(
        "a start ticket (Login forVm) serves one start of the VM it names, on the connection's process that took it: not another process, not another VM, not after Started, not for Token.Sign"
    )
    func ticketServesOneStart() throws {
        let f = try DaemonFixture()
        try f.bootHost()
        let login = try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1", "forVm": "office"])
        #expect(login["session"] == nil, "a login for a VM start opens no session")
        let ticket = try #require(login["ticket"]?.stringValue)

        // Not a session: it signs nothing.
        #expect {
            try f.daemon.call(
                "io.ukey.Token.Sign",
                [
                    "key": "alice", "digest": .string(Data(repeating: 1, count: 32).base64EncodedString()),
                    "session": .string(ticket),
                ]
            )
        } throws: { VarlinkError.named("io.ukey.Token.SessionRequired")($0) }
        // Not for another VM (bob's dev needs bob anyway: the ticket names office).
        #expect(try f.measureByPath("dev", session: ticket).last?["reason"] == "start-ticket-for-another-vm")

        // The start: every component, one process; a second connection of the same process too.
        #expect(try f.measureByPath("office", session: ticket).allSatisfy { $0["load"] == true })
        #expect(try f.measureByPath("office", session: ticket).allSatisfy { $0["load"] == true })
        // Another process presenting it meanwhile (it read the domain's XML): refused.
        let helper = try ExternalTool("python3").run([
            "-c", Self.otherUid, f.daemon.socketPath, ticket, try f.expected("office", "overlay"),
        ])
        let other = try VarlinkCodec.parseObject(Array(helper.stdout.utf8))
        #expect(other["measure"]?["reason"] == "start-ticket-spent", "\(helper.stdout) \(helper.stderr)")

        // QEMU is up: the ticket is spent, for this process too.
        try f.daemon.call("io.ukey.Boot.Started", ["entity": "office"])
        #expect(try f.measureByPath("office", session: ticket).last?["reason"] == "start-ticket-spent")

        // A ticket nobody took is not spent by another start's end; a start that never reached
        // Started is over when the VM is released.
        let second = try #require(
            try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1", "forVm": "office"])["ticket"]?
                .stringValue
        )
        try f.daemon.call("io.ukey.Boot.Started", ["entity": "office"])
        #expect(try f.measureByPath("office", session: second).allSatisfy { $0["load"] == true })
        try f.daemon.call("io.ukey.Boot.Release", ["entity": "office"])
        #expect(try f.measureByPath("office", session: second).last?["reason"] == "start-ticket-spent")

        // The login for a VM is audited with the VM it names.
        let logins =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "login", "limit": 100])["records"]?.arrayValue ?? []
        #expect(
            logins.contains { $0["subject"]?["forVm"] == "office" && $0["subject"]?["outcome"] == "success" },
            "\(logins)"
        )
    }
}
