import Crypto
import Foundation
import Testing
import UkeyTesting
import UkeyVarlink

#if canImport(Glibc)
import Glibc
#endif

/// The ways a review by attack ran an unlisted program past ukey-guard, each performed from
/// outside against a real guard on a tmpfs of the test's own and a real ukeyd: a copy of the
/// mount in a user's own namespace, the runtime linker run as a program, an interpreter reading
/// a script, a program in a memfd, a hard link to an allowed file, and a guard killed without a
/// word. Root only (fanotify, mounts, a second uid), as in CI. Nested in `ExecGuardTests`, whose
/// `.serialized` then holds for both: every guard writes vm.memfd_noexec, a setting of the whole
/// machine, and the memfd test needs it left alone while it runs.
extension ExecGuardTests {
    @Suite("ukey-guard: what it does not watch, it refuses; a lost guard is recorded")
    struct GuardAttackTests {
        typealias Scratch = ExecGuardTests.Scratch
        typealias Guard = ExecGuardTests.Guard
        static let setpriv = ExternalTool("setpriv")
        static let unshare = ExternalTool("unshare")
        /// Debian's python3 (the PATH may have another): a real interpreter, run as the attacker would.
        static let python = "/usr/bin/python3"
        static let loader = "/lib64/ld-linux-x86-64.so.2"

        /// Runs a command and returns its exit status and what it said.
        static func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
            let result = try ExternalTool.run(tool, arguments)
            return (result.status, result.stdout + result.stderr)
        }

        /// A daemon with `allow` on vmm's list, the host booted, and a guard on the scratch tmpfs.
        static func guarded(
            _ scratch: Scratch,
            allow: [(path: String, digest: String)],
            extraRules: String = ""
        ) throws -> (DaemonFixture, Guard) {
            let f = try DaemonFixture(load: false)
            try f.loadPolicy(ExecGuardTests.policy(f.policyText, version: 1, allow: allow) + extraRules)
            try f.bootHost()
            // A deadline well past any answer on a busy host: these tests are about what is judged.
            return (f, try Guard(socket: f.daemon.socketPath, mount: scratch.path, deadline: "5"))
        }

        static func auditLines(_ f: DaemonFixture) throws -> [Substring] {
            try String(contentsOfFile: f.daemon.stateDirectory + "/audit.log", encoding: .utf8).split(separator: "\n")
        }

        @Test(
            "a copy of the guarded mount in an unprivileged user's own namespace (unshare -Urm) is guarded too: the unlisted program gets EPERM there, the listed one runs",
            .enabled(
                if: setpriv.shouldRun && unshare.shouldRun,
                Comment(rawValue: setpriv.skipReason + unshare.skipReason)
            )
        )
        func mountNamespaceCopy() throws {
            let scratch = try Scratch()
            chmod(scratch.directory.path, 0o755)  // the second uid must reach the tmpfs (mkdtemp makes 0700)
            let allowed = try scratch.program("allowed", from: "/usr/bin/true")
            let unlisted = try scratch.program("unlisted", from: "/usr/bin/false")
            let (f, guarding) = try Self.guarded(scratch, allow: [allowed])
            defer { guarding.stop() }
            let asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "-Urm"]
            let listed = try Self.run(Self.setpriv.path!, asNobody + [allowed.path])
            let execs = try Self.auditLines(f).filter { $0.contains("exec") }
            #expect(
                listed.status == 0,
                "the listed program in the namespace copy: \(listed.output) \(execs) \(guarding.stop())"
            )
            let refused = try Self.run(Self.setpriv.path!, asNobody + [unlisted.path])
            // With a mount mark (the code before), /usr/bin/false ran and exited 1.
            #expect(
                refused.status == 126 && refused.output.contains("Operation not permitted"),
                "unlisted, run from the user's own mount namespace: \(refused.status) \(refused.output)"
            )
        }

        @Test(
            "the runtime linker run as a program (ld.so ./unlisted) is refused the unlisted program; ld.so ./allowed runs"
        )
        func runtimeLinker() throws {
            let scratch = try Scratch()
            let allowed = try scratch.program("allowed", from: "/usr/bin/true")
            let unlisted = try scratch.program("unlisted", from: "/usr/bin/true", flip: true)
            let (f, guarding) = try Self.guarded(scratch, allow: [allowed])
            defer { guarding.stop() }
            #expect(try Self.run(Self.loader, [allowed.path]).status == 0)
            let refused = try Self.run(Self.loader, [unlisted.path])
            #expect(
                refused.status != 0 && refused.output.contains("Operation not permitted"),
                "ld.so ran an unlisted program: \(refused.status) \(refused.output)"
            )
            let said = guarding.stop()
            #expect(
                try Self.auditLines(f).contains {
                    $0.contains(#""type":"exec""#) && $0.contains(unlisted.path) && $0.contains(#""decision":"deny""#)
                }
            )
            #expect(said.contains("loads by a linker or an interpreter judged"))
        }

        @Test(
            "an interpreter may not read an unlisted script: python3 script.py and sh script (no extension, no #!) get EPERM, listed scripts run, each refusal audited; a rule set with interpreters: allow lets them run, and its load is recorded"
        )
        func interpreters() throws {
            let scratch = try Scratch()
            let listedScript = try scratch.file("listed.py", "print('listed ran')\n")
            let unlistedScript = try scratch.file("unlisted.py", "print('unlisted ran')\n")
            let shellScript = try scratch.file("plain", "echo plain ran\n")
            let dataFile = try scratch.file("data.txt", "not code\n")
            let (f, guarding) = try Self.guarded(scratch, allow: [listedScript])
            defer { guarding.stop() }
            let listed = try Self.run(Self.python, [listedScript.path])
            #expect(listed.status == 0 && listed.output.contains("listed ran"), "\(listed.output)")
            let refused = try Self.run(Self.python, [unlistedScript.path])
            #expect(
                refused.status != 0 && refused.output.contains("Operation not permitted")
                    && !refused.output.contains("unlisted ran"),
                "python3 ran an unlisted script: \(refused.output)"
            )
            let shell = try Self.run("/bin/sh", [shellScript.path])
            #expect(
                shell.status != 0 && !shell.output.contains("plain ran"),
                "sh ran an unlisted script: \(shell.output)"
            )
            // Reading data is not running it: a file of no code form, not the script, is let through.
            let read = try Self.run(Self.python, ["-c", "print(open('\(dataFile.path)').read().strip())"])
            #expect(read.status == 0 && read.output.contains("not code"), "\(read.output)")
            let audit = try Self.auditLines(f)
            for path in [unlistedScript.path, shellScript.path] {
                #expect(
                    audit.contains {
                        $0.contains(#""type":"exec""#) && $0.contains(path) && $0.contains(#""decision":"deny""#)
                    },
                    "no denial of \(path)"
                )
            }
            guarding.stop()

            let (relaxed, relaxedGuard) = try Self.guarded(
                scratch,
                allow: [listedScript],
                extraRules: "    interpreters: allow\n"
            )
            defer { relaxedGuard.stop() }
            let ran = try Self.run(Self.python, [unlistedScript.path])
            #expect(ran.status == 0 && ran.output.contains("unlisted ran"), "interpreters: allow: \(ran.output)")
            #expect(
                try Self.auditLines(relaxed).contains {
                    $0.contains(#""type":"policy-relaxed""#) && $0.contains("interpreters: allow")
                        && $0.contains(#""vm":"vmm""#)
                }
            )
        }

        @Test(
            "a program written to a memfd and run with fexecve is refused once the guard runs (it sets vm.memfd_noexec = 2); before, it ran"
        )
        func memfd() throws {
            let script = """
                import os
                fd = os.memfd_create('payload')
                os.write(fd, open('/usr/bin/true', 'rb').read())
                os.execve(fd, ['payload'], {})
                """
            let previous = try String(contentsOfFile: "/proc/sys/vm/memfd_noexec", encoding: .utf8)
            try "0".write(toFile: "/proc/sys/vm/memfd_noexec", atomically: false, encoding: .utf8)
            defer { try? previous.write(toFile: "/proc/sys/vm/memfd_noexec", atomically: false, encoding: .utf8) }
            #expect(
                try Self.run(Self.python, ["-c", script]).status == 0,
                "the payload runs from a memfd on this kernel with no guard"
            )
            let scratch = try Scratch()
            let (_, guarding) = try Self.guarded(scratch, allow: [])
            defer { guarding.stop() }
            let refused = try Self.run(Self.python, ["-c", script])
            #expect(
                refused.status != 0 && refused.output.contains("PermissionError"),
                "a memfd program ran under the guard: \(refused.output)"
            )
        }

        @Test(
            "the guard refuses to start where it cannot see everything, naming the setting: user namespaces open to unprivileged users, or (a kernel before 6.3) no vm.memfd_noexec; told to accept a gap, it starts and the gap is in its start record"
        )
        func gapsRefused() throws {
            let f = try DaemonFixture(load: false)
            try f.loadPolicy(ExecGuardTests.policy(f.policyText, version: 1, allow: []))
            let scratch = try Scratch()
            let guardBinary = PackagePaths.builtProduct("ukey-guard")
            let refused = try Self.run(
                guardBinary,
                ["--socket", f.daemon.socketPath, "--vm", "vmm", "--mount", scratch.path]
            )
            #expect(
                refused.status != 0 && refused.output.contains("user.max_user_namespaces")
                    && refused.output.contains("--allow-user-namespaces"),
                "\(refused.output)"
            )
            let guarding = try Guard(socket: f.daemon.socketPath, mount: scratch.path)
            guarding.stop()
            #expect(
                try Self.auditLines(f).contains {
                    $0.contains(#""type":"guard""#) && $0.contains(#""event":"start""#)
                        && $0.contains(#""gaps":"user-namespaces""#)
                }
            )
        }

        @Test(
            "a hard link made to an allowed file before its first exec does not run from the cache under the link's unlisted name; the listed name still runs"
        )
        func hardLink() throws {
            let scratch = try Scratch()
            let allowed = try scratch.program("allowed", from: "/usr/bin/true")
            let alias = scratch.path + "/alias"
            #expect(link(allowed.path, alias) == 0)
            let (f, guarding) = try Self.guarded(scratch, allow: [allowed])
            defer { guarding.stop() }
            let first = ExecGuardTests.spawn(allowed.path)
            let audit = try Self.auditLines(f).filter { $0.contains("exec") || $0.contains("guard") }
            #expect(first == (0, 0), "\(audit) \(guarding.stop())")
            #expect(
                ExecGuardTests.spawn(alias).error == EPERM,
                "the link ran from the cache of the allowed name's decision"
            )
            #expect(ExecGuardTests.spawn(allowed.path) == (0, 0))
        }

        @Test(
            "a guard killed with SIGKILL is recorded lost (its held connection closed without a stop) and ukeyctl status shows it; a guard stopped cleanly is not"
        )
        func guardLost() throws {
            let scratch = try Scratch()
            let (f, stopped) = try Self.guarded(scratch, allow: [])
            stopped.stop()
            let killed = try Guard(socket: f.daemon.socketPath, mount: scratch.path)
            let pid = killed.process.processIdentifier
            // Alive, it is running and not lost (its presence call stays open).
            usleep(1_000_000)
            let running =
                try f.daemon.call("io.ukey.Admin.Status")["guards"]?.arrayValue?.compactMap(\.objectValue) ?? []
            #expect(
                running.contains { $0["pid"]?.intValue == Int(pid) && $0["state"]?.stringValue == "running" },
                "\(running)"
            )
            #expect(
                !(try Self.auditLines(f).contains { $0.contains(#""event":"lost""#) }),
                "a live guard was recorded lost"
            )
            kill(pid, SIGKILL)
            killed.stop()
            var lost = false
            for _ in 0..<50 where !lost {  // 5 s at most: a bound against a hang
                lost = try Self.auditLines(f).contains {
                    $0.contains(#""type":"guard""#) && $0.contains(#""event":"lost""#) && $0.contains("\"pid\":\(pid)")
                }
                if !lost { usleep(100_000) }
            }
            #expect(lost, "no guard-lost record for the killed guard")
            let status = try f.daemon.call("io.ukey.Admin.Status")
            let guards = status["guards"]?.arrayValue?.compactMap(\.objectValue) ?? []
            #expect(
                guards.contains {
                    $0["pid"]?.intValue == Int(pid) && $0["state"]?.stringValue == "lost"
                        && $0["vm"]?.stringValue == "vmm"
                },
                "\(guards)"
            )
            #expect(
                guards.contains { $0["state"]?.stringValue == "stopped" },
                "the guard stopped cleanly is not lost: \(guards)"
            )
            #expect(try Self.auditLines(f).filter { $0.contains(#""event":"lost""#) }.count == 1)
            let shown = try ExternalTool.run(
                PackagePaths.builtProduct("ukeyctl"),
                ["status", "--socket", f.daemon.socketPath]
            )
            #expect(shown.stdout.contains("LOST"), "ukeyctl status: \(shown.stdout)")
        }
    }
}

extension ExecGuardTests.Scratch {
    /// A plain file (a script) here, and its SHA-256 digest for a policy.
    func file(_ name: String, _ text: String) throws -> (path: String, digest: String) {
        let path = "\(self.path)/\(name)"
        #expect(
            FileManager.default.createFile(
                atPath: path,
                contents: Data(text.utf8),
                attributes: [.posixPermissions: 0o644]
            )
        )
        return (path, "sha256:" + SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined())
    }
}
