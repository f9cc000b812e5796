import Foundation
import Testing
import UkeyTesting
import UkeyVarlink

/// The review's finding: a peer with the user role alone sent `Audit.Query` with `more: true` on
/// five connections; each lost its idle timeout before the role check refused it, and under
/// `--max-connections 5` root's `ukeyctl status` then failed with TooManyConnections.
@Suite("ukeyd: unprivileged peers cannot hold every connection")
struct ConnectionSlotTests {
    static let setpriv = ExternalTool("setpriv")
    static let python = ExternalTool("python3")
    /// Debian's interpreter: one on root's PATH (pyenv) may not be readable by other uids.
    static let systemPython = "/usr/bin/python3"

    /// Opens `count` connections as the uid it runs as, asks each to follow the audit log, and
    /// prints, per connection, the reply's error and how long until ukeyd closed it.
    static let client = #"""
        import json, socket, sys, time
        path, count, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        conns, out = [], []
        for i in range(count):
            s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(path)
            try:
                s.sendall(b'{"method":"io.ukey.Audit.Query","parameters":{},"more":true}\0')
            except (BrokenPipeError, ConnectionResetError):
                pass  # a refused connection is closed at once; its reason is still there to read
            data = b""
            while not data.endswith(b"\0"):
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk: break
                data += chunk
            reply = json.loads(data.rstrip(b"\0") or b"{}")
            conns.append((s, time.time())); out.append({"error": reply.get("error"), "reason": reply.get("parameters", {}).get("reason")})
        print("held", flush=True)
        for (s, start), entry in zip(conns, out):
            s.settimeout(max(0.1, hold - (time.time() - start)))
            try:
                closed = s.recv(65536) == b""
            except socket.timeout:
                closed = False
            except OSError:
                closed = True  # reset by ukeyd: closed all the same
            entry["closedAfter"] = round(time.time() - start, 2) if closed else None
        print(json.dumps(out), flush=True)
        """#

    /// Starts the client as `uid`; returns once its connections are held, and a way to read its result.
    static func hold(
        _ daemon: TestDaemon,
        uid: Int,
        count: Int,
        seconds: Double,
        script: String
    ) throws -> () throws -> [[String: Any]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(setpriv.path))
        // Both test uids have group nogroup (65534), the socket's group.
        process.arguments = [
            "--reuid=\(uid)", "--regid=65534", "--clear-groups", Self.systemPython, script, daemon.socketPath,
            "\(count)", "\(seconds)",
        ]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        var buffer = Data()
        while !String(decoding: buffer, as: UTF8.self).contains("held\n") {
            let chunk = out.fileHandleForReading.availableData
            guard !chunk.isEmpty else {
                let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                throw TestDaemonError(
                    "the client as uid \(uid) ended early: \(String(decoding: buffer, as: UTF8.self))\(errors)"
                )
            }
            buffer += chunk
        }
        return {
            let rest = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let text = String(decoding: buffer + rest, as: UTF8.self).split(separator: "\n").last ?? ""
            return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]) ?? []
        }
    }

    @Test(
        "follow is refused before the idle timeout is lifted; one uid holds at most its share; the last slot stays root's",
        .enabled(
            if: setpriv.shouldRun && python.shouldRun,
            Comment(rawValue: setpriv.skipReason + "; " + python.skipReason)
        )
    )
    func slotsForPrivilegedPeers() throws {
        let f = try DaemonFixture(arguments: [
            "--max-connections", "5", "--max-connections-per-uid", "3", "--idle-timeout", "4", "--socket-group",
            "nogroup", "--socket-mode", "0660",
        ])
        chmod(f.daemon.directory.path, 0o711)
        chmod(f.daemon.runtimeDirectory, 0o711)
        let script = f.daemon.directory.file("client.py")
        try Self.client.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o644)

        // nobody opens four: three are admitted and refused the follow; the fourth is over its share.
        let nobody = try Self.hold(f.daemon, uid: 65534, count: 4, seconds: 12, script: script)
        // Another unprivileged uid gets the one slot left before the reserved one.
        let other = try Self.hold(f.daemon, uid: 54321, count: 2, seconds: 12, script: script)
        // Root still gets in: the last slot is kept for admin and hypervisor peers.
        #expect(try f.daemon.call("io.ukey.Admin.Status")["initialized"] == true)

        let nobodys = try nobody()
        let others = try other()
        #expect(
            nobodys.prefix(3).allSatisfy { $0["error"] as? String == "org.varlink.service.PermissionDenied" },
            "\(nobodys)"
        )
        #expect(
            nobodys[3]["error"] as? String == "io.ukey.TooManyConnections"
                && (nobodys[3]["reason"] as? String ?? "").contains("this uid already holds 3"),
            "\(nobodys)"
        )
        #expect(others[0]["error"] as? String == "org.varlink.service.PermissionDenied", "\(others)")
        #expect(
            others[1]["error"] as? String == "io.ukey.TooManyConnections"
                && (others[1]["reason"] as? String ?? "").contains("kept for administrators"),
            "\(others)"
        )
        // The refused followers kept their idle timeout: ukeyd closed them after about 4 s, not never.
        for entry in nobodys.prefix(3) + others.prefix(1) {
            let closedAfter = entry["closedAfter"] as? Double
            #expect(closedAfter != nil && closedAfter! < 10, "\(entry)")
        }
        // Each refused follow was audited like any other refused call: the first per uid at once,
        // the rest counted into one record when the daemon stops.
        f.daemon.stop()
        try f.daemon.start()
        let refusals =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "permission-denied", "limit": 100])["records"]?.arrayValue
            ?? []
        let follows = refusals.filter { $0["subject"]?["method"] == "io.ukey.Audit.Query" }
        let total = follows.reduce(0) { $0 + ($1["subject"]?["repeated"]?.intValue ?? 1) }
        #expect(total == 4, "\(follows)")
    }
}

/// The review's finding: 191,916 denied `Admin.Status` calls from a user-role peer in 150 s grew
/// audit.log to 60 MB.
@Suite("ukeyd: repeated denials are counted, not written one by one")
struct DenialFloodTests {
    static let flood = #"""
        import socket, sys, threading
        path, count = sys.argv[1], int(sys.argv[2])
        s = socket.socket(socket.AF_UNIX); s.settimeout(60); s.connect(path)
        # Write from a thread while reading here: ukeyd stops reading a client that does not read.
        writer = threading.Thread(target=lambda: s.sendall(b'{"method":"io.ukey.Admin.Status"}\0' * count))
        writer.start()
        data = b""
        while data.count(b"\0") < count:
            chunk = s.recv(1 << 20)
            if not chunk: break
            data += chunk
        writer.join()
        print(data.count(b"PermissionDenied"))
        """#

    @Test(
        "5,000 denied calls from one peer add two records, and the second counts the rest",
        .enabled(if: ConnectionSlotTests.setpriv.shouldRun, Comment(rawValue: ConnectionSlotTests.setpriv.skipReason))
    )
    func floodIsAggregated() throws {
        let f = try DaemonFixture(arguments: ["--socket-group", "nogroup"])
        chmod(f.daemon.directory.path, 0o711)
        let script = f.daemon.directory.file("flood.py")
        try Self.flood.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o644)
        let path = f.daemon.stateDirectory + "/audit.log"
        let before = try Data(contentsOf: URL(fileURLWithPath: path)).count
        let result = try ConnectionSlotTests.setpriv.run([
            "--reuid=65534", "--regid=65534", "--clear-groups", ConnectionSlotTests.systemPython, script,
            f.daemon.socketPath, "5000",
        ])
        #expect(
            result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "5000",
            "\(result.stdout)\(result.stderr)"
        )
        let grown = try Data(contentsOf: URL(fileURLWithPath: path)).count - before
        #expect(grown < 4096, "the log grew by \(grown) bytes for 5,000 denials")
        // At the stop the interval's count is written: 1 + repeated = every denial.
        f.daemon.stop()
        try f.daemon.start()
        let records =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "permission-denied", "limit": 100])["records"]?.arrayValue
            ?? []
        let status = records.filter {
            $0["subject"]?["method"] == "io.ukey.Admin.Status" && $0["actor"]?["uid"] == 65534
        }
        let counted = status.reduce(0) { $0 + ($1["subject"]?["repeated"]?.intValue ?? 1) }
        #expect(counted == 5000, "\(status)")
        #expect(status.count <= 3, "\(status.count) records")
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)
    }
}
