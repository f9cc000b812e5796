import Foundation
import Testing
import UkeyGuard
import UkeyTesting

/// What ukey-guard covers, decided without a kernel: which file systems it marks, which opens are
/// program loads, and what it does where the kernel cannot be closed.
@Suite("ukey-guard's coverage: file systems, program loads, kernel gaps")
struct GuardCoverageTests {
    @Test(
        "mountinfo: every file system that can hold a program once (tmpfs, /dev/shm, overlay included), the kernel's own views left out, escapes read"
    )
    func mountTable() {
        let text = """
            22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
            23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw
            24 22 0:5 / /dev rw,nosuid shared:3 - devtmpfs udev rw
            25 24 0:22 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw
            26 22 0:23 / /sys rw shared:5 - sysfs sysfs rw
            27 22 8:1 /home /mnt/bind\\040copy rw shared:1 - ext4 /dev/sda1 rw
            28 22 0:24 / /var/lib/containers/x rw - overlay overlay rw,lowerdir=/a
            29 26 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
            garbage line
            """
        let table = MountTable(parsing: text)
        #expect(table.mounts.count == 8)
        #expect(table.mounts[5].mountPoint == "/mnt/bind copy")
        #expect(table.programFileSystems.map(\.mountPoint) == ["/", "/dev", "/dev/shm", "/var/lib/containers/x"])
    }

    @Test(
        "program loads: the runtime linker run as a program and interpreters, by executable name; code by its form; the script an interpreter was started with"
    )
    func programLoads() {
        let loads = ProgramLoads()
        #expect(loads.opener(executable: "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2") == .loader)
        #expect(loads.opener(executable: "/usr/bin/python3.11") == .interpreter)
        #expect(loads.opener(executable: "/usr/bin/perl5.36.0") == .interpreter)
        #expect(loads.opener(executable: "/usr/bin/dash") == .interpreter)
        #expect(loads.opener(executable: "/usr/bin/pythonista") == nil)
        #expect(loads.opener(executable: "/usr/bin/cat") == nil)
        #expect(ProgramLoads.isCode(head: Array("#!/bin/sh".utf8), path: "/x/data"))
        #expect(ProgramLoads.isCode(head: [0x7F, 0x45, 0x4C, 0x46], path: "/x/lib.so"))
        #expect(ProgramLoads.isCode(head: Array("print(1)".utf8), path: "/x/tool.py"))
        #expect(ProgramLoads.isCode(head: Array("x".utf8), path: "/x/Module.PM"))
        #expect(!ProgramLoads.isCode(head: Array("ab\r\nc".utf8), path: "/x/notes.txt"))
        #expect(!ProgramLoads.isCode(head: [], path: "/x/.py"))
        #expect(ProgramLoads.scriptArgument(["-u", "-W", "ignore", "script.py", "arg"]) == "script.py")
        #expect(ProgramLoads.scriptArgument(["-c", "print(1)", "file.py"]) == nil)
        #expect(ProgramLoads.scriptArgument(["-m", "http.server"]) == nil)
        #expect(ProgramLoads.scriptArgument(["-e", "1"]) == nil)
        #expect(ProgramLoads.scriptArgument(["-o", "errexit", "run"]) == "run")
        #expect(ProgramLoads.scriptArgument(["-f", "prog.awk", "data"]) == "prog.awk")
        #expect(ProgramLoads.scriptArgument(["--", "-odd-name"]) == "-odd-name")
        #expect(ProgramLoads.scriptArgument([]) == nil && ProgramLoads.scriptArgument(["-"]) == nil)
    }

    @Test(
        "kernel gaps: vm.memfd_noexec is set to 2 where the kernel has it; without it, or with user namespaces open to users, the guard refuses to start naming the setting, unless told to accept the gap"
    )
    func kernelGaps() throws {
        let dir = try TemporaryDirectory("ukey-gaps")
        try FileManager.default.createDirectory(atPath: dir.file("vm"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.file("user"), withIntermediateDirectories: true)
        var gaps = KernelGaps()
        gaps.procSys = dir.path
        // A kernel before 6.3 (no memfd_noexec), user namespaces closed.
        try "0\n".write(toFile: dir.file("user/max_user_namespaces"), atomically: false, encoding: .utf8)
        #expect { try gaps.close(allowMemfdExec: false, allowUserNamespaces: false) } throws: {
            "\($0)".contains("vm.memfd_noexec") && "\($0)".contains("--allow-memfd-exec")
        }
        #expect(try gaps.close(allowMemfdExec: true, allowUserNamespaces: false).accepted == ["memfd-exec"])
        // A kernel with it: set to 2.
        try "0\n".write(toFile: dir.file("vm/memfd_noexec"), atomically: false, encoding: .utf8)
        let closed = try gaps.close(allowMemfdExec: false, allowUserNamespaces: false)
        #expect(closed.accepted.isEmpty && closed.notes.first?.contains("memfd_noexec = 2") == true)
        #expect(try String(contentsOfFile: dir.file("vm/memfd_noexec"), encoding: .utf8).hasPrefix("2"))
        // User namespaces open: refused, or accepted and said.
        try "1000\n".write(toFile: dir.file("user/max_user_namespaces"), atomically: false, encoding: .utf8)
        #expect { try gaps.close(allowMemfdExec: false, allowUserNamespaces: false) } throws: {
            "\($0)".contains("user.max_user_namespaces = 1000")
        }
        #expect(try gaps.close(allowMemfdExec: false, allowUserNamespaces: true).accepted == ["user-namespaces"])
        // Debian's own switch decides where the kernel has it.
        try FileManager.default.createDirectory(atPath: dir.file("kernel"), withIntermediateDirectories: true)
        try "0\n".write(toFile: dir.file("kernel/unprivileged_userns_clone"), atomically: false, encoding: .utf8)
        #expect(try gaps.close(allowMemfdExec: false, allowUserNamespaces: false).accepted.isEmpty)
    }
}
