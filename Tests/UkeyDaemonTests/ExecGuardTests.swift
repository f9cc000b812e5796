import Crypto
import Foundation
import Testing
import UkeyTesting
import UkeyVarlink

#if canImport(Glibc)
import Glibc
#endif

/// ukey-guard on the host, against a real ukeyd: fanotify holds every exec on a tmpfs of the
/// test's own (never the host's root: the test runner's own execs must not depend on it), and the
/// kernel refuses what ukeyd's whitelist for `vmm` does not allow. Root only (fanotify), as in CI.
@Suite(
    "ukey-guard: the kernel enforces ukeyd's whitelist on the host",
    .serialized,
    .enabled(if: ExternalTool.inCI || getuid() == 0, "fanotify and mounts need root")
)
struct ExecGuardTests {
    /// A tmpfs mounted for the test, unmounted at the end.
    final class Scratch {
        let directory: TemporaryDirectory
        /// As the kernel names it (no doubled slash), since the whitelist matches paths exactly.
        var path: String { URL(fileURLWithPath: directory.file("mnt")).standardizedFileURL.path }

        init() throws {
            directory = try TemporaryDirectory("ukey-guard")
            try FileManager.default.createDirectory(atPath: directory.file("mnt"), withIntermediateDirectories: false)
            let mounted = try ExternalTool.run(
                "/bin/mount",
                ["-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", directory.file("mnt")]
            )
            guard mounted.status == 0 else { throw TestDaemonError("mount tmpfs: \(mounted.stderr)") }
        }

        deinit { _ = try? ExternalTool.run("/bin/umount", ["-l", directory.file("mnt")]) }

        /// Copies a system program here (executable), optionally changing one byte near its end.
        func program(_ name: String, from source: String, flip: Bool = false) throws -> (path: String, digest: String) {
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: source)))
            if flip { bytes[bytes.count - 16] ^= 0x01 }
            let path = "\(self.path)/\(name)"
            #expect(
                FileManager.default.createFile(
                    atPath: path,
                    contents: Data(bytes),
                    attributes: [.posixPermissions: 0o755]
                )
            )
            return (path, "sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())
        }
    }

    /// posix_spawn's answer: the errno of a refused exec, or 0 and the exit status.
    static func spawn(_ path: String) -> (error: Int32, status: Int32) {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        defer { argv.forEach { free($0) } }
        let result = posix_spawn(&pid, path, nil, nil, argv, environ)
        guard result == 0 else { return (result, -1) }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return (0, (status >> 8) & 0xFF)
    }

    /// The demo policy with run-time rules for the host's own entity.
    static func policy(
        _ base: String,
        version: Int,
        allow: [(path: String, digest: String)],
        onTimeout: String? = nil
    ) -> String {
        let rules = allow.map { "      - path: \($0.path)\n        digest: \($0.digest)\n" }.joined()
        return base.replacingOccurrences(of: "version: 1\n", with: "version: \(version)\n")
            + "  - vm: vmm\n    default: deny\n" + (onTimeout.map { "    on-timeout: \($0)\n" } ?? "")
            + (rules.isEmpty ? "" : "    allow:\n" + rules)
    }

    /// A running ukey-guard. It sets vm.memfd_noexec = 2 on this host (the kernel has it); the
    /// value from before is put back at `stop`, so the machine is left as it was found.
    final class Guard {
        let process = Process()
        let errors = Pipe()
        let memfdNoexec = try? String(contentsOfFile: "/proc/sys/vm/memfd_noexec", encoding: .utf8)

        /// `--allow-user-namespaces`: this host lets unprivileged users make user namespaces,
        /// which the guard refuses to start beside unless told (GuardAttackTests shows both).
        init(
            socket: String,
            mount: String,
            deadline: String = "1",
            extra: [String] = ["--allow-user-namespaces"]
        ) throws {
            process.executableURL = URL(fileURLWithPath: PackagePaths.builtProduct("ukey-guard"))
            process.arguments = ["--socket", socket, "--vm", "vmm", "--mount", mount, "--deadline", deadline] + extra
            let ready = Pipe()
            process.standardOutput = ready
            process.standardError = errors
            try process.run()
            let line = ready.fileHandleForReading.availableData
            guard String(decoding: line, as: UTF8.self).hasPrefix("ready") else {
                throw TestDaemonError(
                    "ukey-guard did not start: \(String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self))"
                )
            }
        }

        /// Waits until the guard has fetched its VM's allow set (it says so on standard error).
        func waitForAllowSet() throws {
            var said = ""
            let fd = errors.fileHandleForReading.fileDescriptor
            for _ in 0..<300 {  // 30 s at most: a bound against a hang, not a speed claim
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&poller, 1, 100) > 0 {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let count = read(fd, &buffer, buffer.count)
                    if count > 0 { said += String(decoding: buffer[0..<count], as: UTF8.self) }
                }
                if said.contains("allow set of generation") { return }
            }
            throw TestDaemonError("ukey-guard did not fetch its allow set: \(said)")
        }

        /// How many execs the guard said it allowed from the allow set, in its last line.
        static func allowedFromSet(_ said: String) -> Int? {
            guard let match = said.firstMatch(of: /\((\d+) from the allow set\)/) else { return nil }
            return Int(match.1)
        }

        /// Stops the guard; returns what it said on standard error.
        @discardableResult
        func stop() -> String {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            for _ in 0..<100 where process.isRunning { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            if let memfdNoexec {
                try? memfdNoexec.write(toFile: "/proc/sys/vm/memfd_noexec", atomically: false, encoding: .utf8)
            }
            return String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
    }

    @Test(
        "an allowed program runs; one changed byte and an unlisted one get EPERM; a file changed after its allowed exec is hashed again and refused; a policy reload drops the cache; each decision, and the guard's start and stop, is in ukeyd's audit log with the VM"
    )
    func enforcement() throws {
        let f = try DaemonFixture(load: false)
        let scratch = try Scratch()
        let allowed = try scratch.program("allowed", from: "/usr/bin/true")
        let changed = try scratch.program("changed", from: "/usr/bin/true", flip: true)
        let unlisted = try scratch.program("unlisted", from: "/usr/bin/false")
        let mutable = try scratch.program("mutable", from: "/usr/bin/true")
        let cached = try scratch.program("cached", from: "/usr/bin/true")
        // "changed" is listed under the true digest: its content differs by one byte.
        try f.loadPolicy(
            Self.policy(f.policyText, version: 1, allow: [allowed, (changed.path, allowed.digest), mutable, cached])
        )
        try f.bootHost()
        let guarding = try Guard(socket: f.daemon.socketPath, mount: scratch.path)
        defer { guarding.stop() }

        #expect(Self.spawn(allowed.path) == (0, 0))
        #expect(Self.spawn(changed.path).error == EPERM)
        #expect(Self.spawn(unlisted.path).error == EPERM)
        #expect(Self.spawn(mutable.path) == (0, 0))
        #expect(Self.spawn(cached.path) == (0, 0))

        // Changed after it was allowed: new size and times, hashed again, refused.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: mutable.path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0]))
        try handle.close()
        #expect(Self.spawn(mutable.path).error == EPERM)

        // A reload that no longer lists "cached": its allowed decision must not outlive it.
        try f.loadPolicy(Self.policy(f.policyText, version: 2, allow: [allowed]))
        var refused = false
        for _ in 0..<50 where !refused {
            refused = Self.spawn(cached.path).error == EPERM
            if !refused { usleep(100_000) }
        }
        #expect(refused, "the cached allow survived a policy reload")
        #expect(Self.spawn(allowed.path) == (0, 0))

        #expect(guarding.stop().contains("stopped after"))
        let audit = try String(contentsOfFile: f.daemon.stateDirectory + "/audit.log", encoding: .utf8)
        for event in ["start", "stop"] {
            #expect(
                audit.split(separator: "\n").contains {
                    $0.contains(#""type":"guard""#) && $0.contains("\"event\":\"\(event)\"")
                        && $0.contains(#""vm":"vmm""#)
                },
                "the guard's \(event) is not in the audit log"
            )
        }
        let denials = audit.split(separator: "\n").filter {
            $0.contains(#""type":"exec""#) && $0.contains(#""vm":"vmm""#) && $0.contains(#""decision":"deny""#)
        }
        for path in [changed.path, unlisted.path, mutable.path, cached.path] {
            #expect(denials.contains { $0.contains(path) }, "no denial of \(path) in the audit log")
        }
    }

    @Test(
        "with ukeyd gone, the guard answers a file it cannot decide by the policy's on-timeout (by default deny while enforcing; allow where the rule set says so) and the exec returns instead of hanging; a listed file is still allowed from the VM's allow set",
        arguments: [nil, "allow"]
    )
    func daemonGone(onTimeout: String?) throws {
        let f = try DaemonFixture(load: false)
        let scratch = try Scratch()
        let allowed = try scratch.program("allowed", from: "/usr/bin/true")
        let listed = try scratch.program("listed", from: "/usr/bin/true")
        let late = try scratch.program("late", from: "/usr/bin/false")
        try f.loadPolicy(Self.policy(f.policyText, version: 1, allow: [allowed, listed], onTimeout: onTimeout))
        try f.bootHost()
        let guarding = try Guard(socket: f.daemon.socketPath, mount: scratch.path, deadline: "0.5")
        defer { guarding.stop() }
        #expect(Self.spawn(allowed.path) == (0, 0))
        try guarding.waitForAllowSet()
        f.daemon.kill9()
        let started = Date()
        let answer = Self.spawn(late.path)
        if onTimeout == "allow" {
            #expect(answer == (0, 1), "not listed, ukeyd cannot say, and the policy says allow: /usr/bin/false ran")
        } else {
            #expect(answer.error == EPERM, "not listed, and ukeyd cannot say: denied")
        }
        // The bound is the test's own guard against a hang (twenty times the deadline), not a speed claim.
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(Self.spawn(allowed.path) == (0, 0), "what was decided before stays decided")
        #expect(
            Self.spawn(listed.path) == (0, 0),
            "never run before, but in the allow set ukeyd published: allowed without a call"
        )
        #expect((Guard.allowedFromSet(guarding.stop()) ?? 0) >= 1, "the listed file was allowed from the set")
    }

    @Test(
        "the guard allows from the VM's allow set only what ukeyd listed: a listed file runs without a call, a changed copy at a listed path and an unlisted file are asked about and refused (and recorded), and after a reload that drops a file the old set no longer allows it"
    )
    func allowSet() throws {
        let f = try DaemonFixture(load: false)
        let scratch = try Scratch()
        let first = try scratch.program("first", from: "/usr/bin/true")
        let second = try scratch.program("second", from: "/usr/bin/true")
        let changed = try scratch.program("changed", from: "/usr/bin/true", flip: true)
        let unlisted = try scratch.program("unlisted", from: "/usr/bin/true")
        try f.loadPolicy(Self.policy(f.policyText, version: 1, allow: [first, second, (changed.path, first.digest)]))
        try f.bootHost()
        let guarding = try Guard(socket: f.daemon.socketPath, mount: scratch.path)
        defer { guarding.stop() }
        try guarding.waitForAllowSet()
        #expect(Self.spawn(first.path) == (0, 0))
        #expect(Self.spawn(changed.path).error == EPERM)
        #expect(Self.spawn(unlisted.path).error == EPERM)

        // A reload that drops "second" before it ever ran: the set of the old generation must not allow it.
        try f.loadPolicy(Self.policy(f.policyText, version: 2, allow: [first]))
        usleep(1_500_000)  // the guard learns the new generation within a second
        #expect(Self.spawn(second.path).error == EPERM)
        let said = guarding.stop()
        #expect(Guard.allowedFromSet(said) == 1, "the first exec came from the set, nothing else did: \(said)")
        let audit = try String(contentsOfFile: f.daemon.stateDirectory + "/audit.log", encoding: .utf8)
        let denials = audit.split(separator: "\n").filter {
            $0.contains(#""type":"exec""#) && $0.contains(#""decision":"deny""#)
        }
        for path in [changed.path, unlisted.path, second.path] {
            #expect(denials.contains { $0.contains(path) }, "no denial of \(path) in the audit log")
        }
    }
}
