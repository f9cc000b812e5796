import Foundation
import Testing
import UkeyClient
import UkeyTesting
import UkeyVarlink

/// The review's findings on `Boot.Measure(path:)`: two calls naming a FIFO blocked `open()` on the
/// shared task pool, and GetInfo and root's status timed out; a non-root hypervisor-role peer got
/// the SHA-256 of a root-only file and learned whether files exist in a directory it cannot read.
@Suite("ukeyd: Measure by path")
struct MeasurePathTests {
    static let setpriv = ExternalTool("setpriv")

    @Test("a FIFO is refused at once, and nothing else waits for it")
    func fifoDoesNotHang() throws {
        let f = try DaemonFixture()
        let fifo = f.daemon.directory.file("trap.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let callers = try (0..<2).map { _ in try f.daemon.connect(timeout: 10) }
        for caller in callers {
            try caller.send(
                VarlinkCall(
                    method: "io.ukey.Boot.Measure",
                    parameters: ["entity": "vmm", "component": "kernel", "path": .string(fifo)]
                )
            )
        }
        #expect(try f.daemon.connect(timeout: 10).call("org.varlink.service.GetInfo")["product"] == "ukeyd")
        #expect(try f.daemon.connect(timeout: 10).call("io.ukey.Admin.Status")["initialized"] == true)
        for caller in callers {
            let reply = try caller.receive()
            #expect(
                reply.error == "io.ukey.Boot.CannotHash"
                    && reply.parameters["reason"]?.stringValue?.contains("not a regular file") == true,
                "\(reply)"
            )
        }
        #expect(try f.state("vmm").state == "pending", "nothing was measured")
    }

    @Test(
        "a non-root hypervisor peer's path is opened with its own rights: no root-only file, no probing of unreadable directories, no symlink; what it can read is measured",
        .enabled(if: setpriv.shouldRun, Comment(rawValue: setpriv.skipReason))
    )
    func pathOpenedWithCallersRights() throws {
        let f = try DaemonFixture(arguments: [
            "--socket-group", "nogroup", "--socket-mode", "0660", "--hypervisor-group", "staff",
        ])
        let binary = try f.openToOtherUsers()
        // The vmm kernel image, three ways: readable by all, root's alone, and behind a 0700 directory.
        let kernel = try #require(
            try UkeyPolicyLookup(text: f.policyText).components("vmm").first { $0.0 == "kernel" }?.1
        )
        let open = f.daemon.directory.file("open")
        let closed = f.daemon.directory.file("closed")
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: closed, withIntermediateDirectories: true)
        chmod(open, 0o755)
        chmod(closed, 0o700)
        for (name, mode) in [("open/kernel", 0o644), ("open/root-only", 0o600), ("closed/kernel", 0o644)] {
            try FileManager.default.copyItem(atPath: kernel, toPath: f.daemon.directory.file(name))
            chmod(f.daemon.directory.file(name), mode_t(mode))
        }
        try FileManager.default.createSymbolicLink(
            atPath: f.daemon.directory.file("open/link"),
            withDestinationPath: f.daemon.directory.file("open/kernel")
        )
        let staff = try #require(getgrnam("staff")?.pointee.gr_gid)
        func measure(_ name: String) throws -> (status: Int32, output: String) {
            let result = try Self.setpriv.run([
                "--reuid=54321", "--regid=65534", "--groups=\(staff)", binary, "measure", "vmm", "kernel",
                "--path", f.daemon.directory.file(name), "--json", "--socket", f.daemon.socketPath,
            ])
            return (result.status, result.stdout + result.stderr)
        }
        let rootOnly = try measure("open/root-only")
        #expect(
            rootOnly.status == 1 && rootOnly.output.contains("CannotHash")
                && rootOnly.output.contains("Permission denied"),
            "\(rootOnly)"
        )
        #expect(
            !rootOnly.output.contains(try f.expected("vmm", "kernel")),
            "the digest of a file the caller cannot read leaked"
        )
        // Inside a directory it cannot search, a file that exists and one that does not look the same.
        let hidden = try measure("closed/kernel")
        let missing = try measure("closed/nothing")
        #expect(hidden.status == 1 && hidden.output.contains("Permission denied"), "\(hidden)")
        #expect(
            missing.output.replacingOccurrences(of: "nothing", with: "kernel") == hidden.output,
            "\(missing) vs \(hidden)"
        )
        let link = try measure("open/link")
        #expect(link.status == 1 && link.output.contains("symbolic link"), "\(link)")
        #expect(try f.state("vmm").state == "pending", "nothing was measured by the refused calls")
        // A file it can read is measured.
        let readable = try measure("open/kernel")
        #expect(
            readable.status == 0 && readable.output.replacingOccurrences(of: " ", with: "").contains("\"match\":true"),
            "\(readable)"
        )
        // root's own calls still read what root may.
        let asRoot = try f.daemon.call(
            "io.ukey.Boot.Measure",
            ["entity": "vmm", "component": "kernel", "path": .string(f.daemon.directory.file("open/root-only"))]
        )
        #expect(asRoot["match"] == true)
    }
}
