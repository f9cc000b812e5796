import UkeyAPI
import Foundation
import Testing
import UkeyClient
import UkeyTesting
import UkeyVarlink

@Suite("ukeyd: who may call what, and independent clients")
struct DaemonAccessTests {
    static let setpriv = ExternalTool("setpriv")
    static let python = ExternalTool("python3")

    /// Runs ukeyctl as `nobody` (uid 65534): a second uid that holds only the user role.
    static func asNobody(_ daemon: TestDaemon, _ binary: String, _ arguments: [String]) throws -> ExternalTool.Result {
        try setpriv.run(
            ["--reuid=65534", "--regid=65534", "--clear-groups", binary] + arguments + ["--socket", daemon.socketPath]
        )
    }

    /// The review's finding: the shipped units made /run/ukey root:root 0750, so non-root members
    /// of group ukey could not reach the socket.
    @Test(
        "the runtime directory is root:GROUP 0710 as the units ship it: a real non-root member reaches the socket, a non-member does not",
        .enabled(if: setpriv.shouldRun, Comment(rawValue: setpriv.skipReason))
    )
    func runtimeDirectoryForTheSocketGroup() throws {
        let service = try String(contentsOfFile: "\(DaemonFixture.root)/systemd/ukeyd.service", encoding: .utf8)
        let socketUnit = try String(contentsOfFile: "\(DaemonFixture.root)/systemd/ukeyd.socket", encoding: .utf8)
        #expect(service.contains("RuntimeDirectoryMode=0710") && service.contains("--socket-group ukey"))
        #expect(socketUnit.contains("DirectoryMode=0710") && socketUnit.contains("SocketGroup=ukey"))
        // The same set-up with a group this machine has: nogroup, whose real member is nobody.
        let f = try DaemonFixture(arguments: ["--socket-group", "nogroup"])
        let binary = try f.openToOtherUsers(keepRuntimeDirectory: true)
        var info = stat()
        #expect(lstat(f.daemon.runtimeDirectory, &info) == 0)
        #expect(
            info.st_uid == 0 && info.st_gid == 65534 && info.st_mode & 0o7777 == 0o710,
            "mode \(String(info.st_mode & 0o7777, radix: 8)), gid \(info.st_gid)"
        )
        let member = try Self.setpriv.run([
            "--reuid=65534", "--regid=65534", "--init-groups", binary, "chain", "--json", "--socket",
            f.daemon.socketPath,
        ])
        #expect(member.status == 0, "\(member.stdout)\(member.stderr)")
        let stranger = try Self.setpriv.run([
            "--reuid=54321", "--regid=54321", "--clear-groups", binary, "chain", "--json", "--socket",
            f.daemon.socketPath,
        ])
        #expect(
            stranger.status != 0 && (stranger.stdout + stranger.stderr).contains("Permission denied"),
            "\(stranger.stdout)\(stranger.stderr)"
        )
    }

    /// The review's finding: roles came from the group database, not from the peer's groups at
    /// connect time. A process that dropped a group still got its role, and one that holds a
    /// group only at run time (a uid with no passwd entry at all here) did not.
    @Test(
        "roles come from the groups the peer holds when it connects (SO_PEERGROUPS), not from the group database",
        .enabled(if: setpriv.shouldRun, Comment(rawValue: setpriv.skipReason))
    )
    func rolesFromPeerGroups() throws {
        let f = try DaemonFixture(arguments: [
            "--socket-group", "nogroup", "--socket-mode", "0660", "--admin-group", "staff",
        ])
        let binary = try f.openToOtherUsers()
        let staff = try #require(getgrnam("staff")?.pointee.gr_gid)
        func status(groups: [String]) throws -> ExternalTool.Result {
            // uid 54321 has no passwd entry; its primary group (nogroup) lets it reach the socket.
            try Self.setpriv.run(
                ["--reuid=54321", "--regid=65534"] + groups + [
                    binary, "status", "--json", "--socket", f.daemon.socketPath,
                ]
            )
        }
        let holding = try status(groups: ["--groups=\(staff)"])
        #expect(holding.status == 0 && holding.stdout.contains("\"initialized\""), "\(holding.stdout)\(holding.stderr)")
        let dropped = try status(groups: ["--clear-groups"])
        #expect(
            dropped.status == 1 && dropped.stdout.contains("PermissionDenied"),
            "\(dropped.stdout)\(dropped.stderr)"
        )
        // Many supplementary groups, staff among them, are all seen.
        let many = try status(groups: [
            "--groups=" + ([staff] + (2000..<2100).map(UInt32.init)).map(String.init).joined(separator: ",")
        ])
        #expect(many.status == 0, "\(many.stdout)\(many.stderr)")
    }

    @Test(
        "nobody gets PermissionDenied for hypervisor and admin calls, and they are never executed",
        .enabled(if: setpriv.shouldRun, Comment(rawValue: setpriv.skipReason))
    )
    func permissionMatrix() throws {
        let f = try DaemonFixture(arguments: ["--socket-group", "nogroup", "--socket-mode", "0660"])
        // nobody must be able to reach the socket: traverse the directories, and run ukeyctl.
        let binary = try f.openToOtherUsers()
        let statusBefore = try f.daemon.call("io.ukey.Admin.Status")

        // The user role: reading the chain and the token's public facts.
        let chain = try Self.asNobody(f.daemon, binary, ["chain", "--json"])
        #expect(chain.status == 0, "\(chain.stderr)")
        #expect(try Self.asNobody(f.daemon, binary, ["cert", "root-ca"]).stdout.contains("BEGIN CERTIFICATE"))

        // Hypervisor and admin calls: denied, exit 1, and nothing happened.
        let denied: [[String]] = [
            ["measure", "vmm", "kernel", "--digest", "sha256:" + String(repeating: "0", count: 64)],
            ["login", "alice", "--pin", "alice-p1"],
            ["reset"],
            ["status"],
            ["user", "add", "eve", "--pin", "eve-pin-1"],
            ["mode", "audit"],
        ]
        for arguments in denied {
            let result = try Self.asNobody(f.daemon, binary, arguments + ["--json"])
            #expect(result.status == 1, "\(arguments)")
            #expect(
                result.stdout.contains("org.varlink.service.PermissionDenied"),
                "\(arguments): \(result.stdout)\(result.stderr)"
            )
        }
        let statusAfter = try f.daemon.call("io.ukey.Admin.Status")
        #expect(statusAfter == statusBefore, "a denied call changed the daemon's state")
        #expect(f.daemon.log().contains("permission denied: uid 65534"))
        // Each refusal is in the audit log with the caller's uid and the method it tried.
        let refusals =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "permission-denied", "limit": 1000])["records"]?
            .arrayValue ?? []
        #expect(refusals.count == denied.count)
        #expect(refusals.allSatisfy { $0["actor"]?["uid"] == 65534 && $0["actor"]?["role"] == "user" })
        #expect(refusals.contains { $0["subject"]?["method"] == "io.ukey.Auth.Login" })
        // And nobody may not read the audit log either.
        #expect(try Self.asNobody(f.daemon, binary, ["audit", "show"]).status == 1)
        // And alice's PIN counter was not touched by the denied login.
        #expect(try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"] != nil)
    }

    /// A follow stream goes through the dispatcher's one path, so a caller without the
    /// role is refused and the refusal is recorded like any other call's (and the stream never
    /// starts: the connection keeps its idle timeout).
    @Test(
        "following the audit log without the admin role is refused, and the refusal is in the audit log",
        .enabled(if: setpriv.shouldRun, Comment(rawValue: setpriv.skipReason))
    )
    func followRefusalIsAudited() throws {
        let f = try DaemonFixture(arguments: ["--socket-group", "nogroup", "--socket-mode", "0660"])
        let binary = try f.openToOtherUsers()
        let result = try Self.asNobody(f.daemon, binary, ["audit", "show", "--follow", "--json"])
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(
            (result.stdout + result.stderr).lowercased().contains("permission denied"),
            "\(result.stdout)\(result.stderr)"
        )
        #expect(!result.stdout.contains("\"seq\""), "a refused follower was sent records")
        let refusals =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "permission-denied", "limit": 1000])["records"]?
            .arrayValue ?? []
        #expect(refusals.count == 1)
        #expect(refusals.first?["subject"]?["method"] == "io.ukey.Audit.Query")
        #expect(refusals.first?["actor"]?["uid"] == 65534 && refusals.first?["actor"]?["role"] == "user")
    }

    /// The method table and the IDL agree: every method an interface's description names is served
    /// (a method missing from the table would be MethodNotFound), and nothing else is.
    @Test("every method the IDL describes is routed, and a name it does not describe is MethodNotFound")
    func idlAndRoutesAgree() throws {
        let f = try DaemonFixture()
        func raw(_ method: String, _ parameters: [String: JSONValue]) throws -> VarlinkReply {
            let connection = try f.daemon.connect()
            try connection.send(VarlinkCall(method: method, parameters: parameters))
            return try connection.receive()
        }
        var methods: [String] = []
        for interface in APIInterface.all {
            for line in interface.description.split(separator: "\n") {
                let text = line.trimmingCharacters(in: .whitespaces)
                guard text.hasPrefix("method "), let open = text.firstIndex(of: "(") else { continue }
                methods.append(
                    interface.name + "." + text.dropFirst("method ".count)[..<open].trimmingCharacters(in: .whitespaces)
                )
            }
        }
        #expect(methods.count >= 25, "\(methods)")
        for method in methods {
            // A parameter of the wrong type: every routed method refuses it before it does anything
            // (or, taking no parameters, ignores it); only an unrouted one says MethodNotFound.
            let reply = try raw(
                method,
                [
                    "entity": .int(0), "user": .int(0), "name": .int(0), "interface": .int(0), "bytes": "x",
                    "nonce": .int(0), "soPin": .int(0), "mode": .int(0), "items": .int(0), "session": .int(0),
                    "since": "x", "policy": .int(0),
                ]
            )
            #expect(reply.error != "org.varlink.service.MethodNotFound", "\(method) is in the IDL but not routed")
        }
        #expect(try raw("io.ukey.Admin.Undescribed", [:]).error == "org.varlink.service.MethodNotFound")
    }

    @Test(
        "the python varlink package introspects every interface and calls Measure, Chain, Quote, Login",
        .enabled(if: python.shouldRun, Comment(rawValue: python.skipReason))
    )
    func pythonClient() throws {
        let f = try DaemonFixture()
        let script = """
            import base64, json, sys, varlink
            address = "unix:" + sys.argv[1]
            kernel = sys.argv[2]
            out = {}
            with varlink.Client(address=address) as client:
                out["interfaces"] = client.get_interfaces()
                for name in out["interfaces"]:
                    interface = client.get_interface(name)   # parses the IDL; raises on a syntax error
                    out.setdefault("members", {})[name] = sorted(interface.members.keys())
                with client.open("io.ukey.Boot") as boot:
                    out["measure"] = boot.Measure(entity="vmm", component="kernel", digest=kernel)
                    out["chain"] = boot.Chain()
                    out["quote"] = boot.Quote(nonce=base64.b64encode(b"python-nonce").decode())
                with client.open("io.ukey.Auth") as auth:
                    out["login"] = auth.Login(user="bob", pin="bob-pin2")
                    try:
                        auth.Login(user="bob", pin="wrong-px")
                    except varlink.VarlinkError as error:
                        out["error"] = [error.error(), error.parameters()]
            print(json.dumps(out))
            """
        let result = try Self.python.run(["-c", script, f.daemon.socketPath, try f.expected("vmm", "kernel")])
        #expect(result.status == 0, "\(result.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(out["interfaces"] as? [String] == APIInterface.all.map(\.name))
        let members = out["members"] as? [String: [String]] ?? [:]
        #expect(
            members["io.ukey.Boot"]?.contains("Measure") == true
                && members["io.ukey.Boot"]?.contains("UnknownEntity") == true
        )
        let measure = out["measure"] as? [String: Any] ?? [:]
        #expect(
            measure["verdict"] as? String == "pending" && measure["match"] as? Bool == true
                && measure["register"] as? Int == 8
        )
        let chain = out["chain"] as? [String: Any] ?? [:]
        #expect((chain["entities"] as? [[String: Any]])?.count == 8)
        let quote = out["quote"] as? [String: Any] ?? [:]
        #expect(
            quote["format"] as? String == (f.daemon.backend == .tpm ? "tpm2" : "ukey-v1")
                && (quote["certificate"] as? String)?.contains("BEGIN CERTIFICATE") == true
        )
        #expect((out["login"] as? [String: Any])?["roles"] as? [String] == ["developer"])
        let error = out["error"] as? [Any] ?? []
        #expect(error.first as? String == "io.ukey.Auth.BadPin")
        #expect((error.last as? [String: Any])?["retriesLeft"] as? Int == 2)
    }
}
