import Foundation
import Testing
import UkeyClient
import UkeyTesting
import UkeyVarlink
#if canImport(Glibc)
import Glibc
#endif

/// A user VM's life: its disk is the VM's state, which ukeyd seals at every stop and
/// the next start must find; read-only parents are hashed once per host boot while their
/// identity holds. Driven through the libvirt hook as libvirt runs it, with this test standing in
/// for QEMU: it opens the disk (held by ukeyd's open guard), says `started begin`, writes the
/// disk as a guest would, and says `release end`.
@Suite(
    "A VM's writable state: sealed at every stop, refused when changed while stopped, accepted by an admin; parents hashed once per boot",
    .serialized,
    .enabled(if: ExternalTool("qemu-img").shouldRun, "\(ExternalTool("qemu-img").skipReason)")
)
struct VMStateTests {
    typealias Guest = LibvirtHookTests.Guest
    static let vmm = Guest.digest(Array("the host kernel".utf8))
    static let ukeyctl = PackagePaths.builtProduct("ukeyctl")

    static func hook(
        _ f: DaemonFixture,
        _ operation: String,
        _ phase: String,
        xml: String,
        environment: [String: String] = [:]
    ) throws -> ExternalTool.Result {
        try ExternalTool.run(
            LibvirtHookTests.hook,
            ["office-1", operation, phase, "-"],
            stdin: Data(xml.utf8),
            environment: ["UKEY_SOCKET": f.daemon.socketPath, "UKEY_CONFIG": "/nonexistent"].merging(environment) {
                $1
            }
        )
    }

    static func ticket(_ f: DaemonFixture) throws -> String {
        try #require(
            try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1", "forVm": "office"])["ticket"]?
                .stringValue
        )
    }

    /// The hook's prepare; then, when it let the guest through, QEMU's part: the disk opened
    /// (as QEMU opens it, while ukeyd holds it) and `started begin`.
    static func start(_ f: DaemonFixture, _ guest: Guest) throws -> ExternalTool.Result {
        let xml = guest.xml(session: try ticket(f))
        let prepared = try hook(f, "prepare", "begin", xml: xml)
        guard prepared.status == 0 else { return prepared }
        let disk = open(guest.overlay, O_RDWR)
        #expect(disk >= 0, "QEMU's open of the measured overlay was refused")
        if disk >= 0 { close(disk) }
        #expect(try hook(f, "started", "begin", xml: xml).status == 0)
        return prepared
    }

    /// What a guest does to its disk while it runs.
    static func guestWrites(_ guest: Guest, _ text: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: guest.overlay))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    static func stop(_ f: DaemonFixture, _ guest: Guest) throws -> ExternalTool.Result {
        try hook(f, "release", "end", xml: guest.xml(session: nil))
    }

    static func records(_ f: DaemonFixture, _ type: String) throws -> [JSONValue] {
        try f.daemon.call("io.ukey.Audit.Query", ["type": .string(type), "limit": 1000])["records"]?.arrayValue ?? []
    }

    static func fixture(_ guest: Guest, arguments: [String] = []) throws -> DaemonFixture {
        let f = try DaemonFixture(arguments: arguments)
        try f.loadPolicy(try guest.policy(vmm: vmm, writable: true))
        try LibvirtHookTests.newBoot(f, vmm: vmm)
        return f
    }

    @Test(
        "a VM that wrote its disk starts again; a disk changed while stopped, or an older copy put back, is refused changed-since-stop; ukeyctl vm status says so and vm accept lets it start; every seal and acceptance is audited"
    )
    func sealedAtStop() throws {
        let guest = try Guest()
        let f = try Self.fixture(guest)
        let first = try guest.digest(guest.overlay)

        let started = try Self.start(f, guest)
        #expect(started.status == 0, "\(started.stderr)")
        try Self.guestWrites(guest, "the user's files, day 1")
        let stopped = try Self.stop(f, guest)
        #expect(stopped.status == 0 && stopped.stderr.isEmpty, "\(stopped.stderr)")
        let day1 = try guest.digest(guest.overlay)
        #expect(day1 != first)
        let sealed = try Self.records(f, "vm-state-sealed")
        #expect(
            sealed.count == 1 && sealed.last?["subject"]?["previous"]?.stringValue == first
                && sealed.last?["subject"]?["digest"]?.stringValue == day1,
            "\(sealed)"
        )

        // The next start finds the state it sealed: the VM starts again, and writes again.
        let again = try Self.start(f, guest)
        #expect(again.status == 0, "a VM that wrote its disk could not start again: \(again.stderr)")
        let keep = try Data(contentsOf: URL(fileURLWithPath: guest.overlay))  // an older copy, kept by an attacker
        try Self.guestWrites(guest, "day 2")
        #expect(try Self.stop(f, guest).status == 0)

        // The disk changed while the VM was stopped: refused, named.
        try Self.guestWrites(guest, "written by the host while the VM was stopped")
        let changed = try Self.start(f, guest)
        #expect(
            changed.status == 1 && changed.stderr.contains("office/disk-vda is untrusted (changed-since-stop)"),
            "\(changed.stderr)"
        )
        #expect(try Self.stop(f, guest).status == 0)

        // ukeyctl vm status: the seal, and the file now not matching it (exit 1).
        let status = try ExternalTool.run(
            Self.ukeyctl,
            ["vm", "status", "office"],
            environment: ["UKEY_SOCKET": f.daemon.socketPath]
        )
        #expect(
            status.status == 1 && status.stdout.contains("CHANGED since its stop")
                && status.stdout.contains("at its release"),
            "\(status.stdout)\(status.stderr)"
        )

        // The older copy put back: refused too.
        try keep.write(to: URL(fileURLWithPath: guest.overlay))
        let older = try Self.start(f, guest)
        #expect(older.status == 1 && older.stderr.contains("changed-since-stop"), "\(older.stderr)")
        #expect(try Self.stop(f, guest).status == 0)

        // An administrator accepts the disk as it is: it starts.
        let accepted = try ExternalTool.run(
            Self.ukeyctl,
            ["vm", "accept", "office"],
            environment: ["UKEY_SOCKET": f.daemon.socketPath]
        )
        let kept = try guest.digest(guest.overlay)
        #expect(
            accepted.status == 0 && accepted.stdout.contains("office/disk-vda: accepted \(kept)"),
            "\(accepted.stdout)\(accepted.stderr)"
        )
        #expect(try Self.start(f, guest).status == 0)
        let acceptance = try Self.records(f, "vm-state-accepted")
        #expect(
            acceptance.count == 1 && acceptance.last?["actor"]?["uid"]?.intValue == Int(getuid())
                && acceptance.last?["subject"]?["previous"]?.stringValue != nil,
            "\(acceptance)"
        )
        // A running VM's state is not accepted: it is sealed when it stops.
        let running = try ExternalTool.run(
            Self.ukeyctl,
            ["vm", "accept", "office"],
            environment: ["UKEY_SOCKET": f.daemon.socketPath]
        )
        #expect(running.status == 1 && running.stderr.contains("is running"), "\(running.stderr)")
        #expect(try Self.stop(f, guest).status == 0)
        #expect(try Self.records(f, "vm-state-sealed").count == 3)
    }

    @Test(
        "a host that stopped without a release (power loss) leaves the disk unsealed: refused until ukeyctl vm accept; a start that never reached QEMU seals nothing"
    )
    func crashWithoutRelease() throws {
        let guest = try Guest()
        let f = try Self.fixture(guest)
        #expect(try Self.start(f, guest).status == 0)
        try Self.guestWrites(guest, "written before the power went")
        // The host loses power: ukeyd dies, /run (the boot journal) is gone, and on a TPM the PCRs.
        f.daemon.kill9()
        try f.daemon.tpm?.restart()
        try FileManager.default.removeItem(atPath: f.daemon.runtimeDirectory + "/boot.journal")
        try f.daemon.start()
        try LibvirtHookTests.newBoot(f, vmm: Self.vmm)
        let refused = try Self.start(f, guest)
        #expect(
            refused.status == 1 && refused.stderr.contains("office/disk-vda is untrusted (changed-since-stop)"),
            "\(refused.stderr)"
        )
        // libvirt releases the refused start: nothing is sealed (the start was not trusted).
        let released = try Self.stop(f, guest)
        #expect(released.status == 0 && released.stderr.contains("not sealed"), "\(released.stderr)")
        #expect(try Self.start(f, guest).status == 1)
        #expect(try Self.stop(f, guest).status == 0)
        // A start the hook let through but whose QEMU never came up (no started begin) seals
        // nothing either: the disk may have been swapped for QEMU's open.
        let accepted = try ExternalTool.run(
            Self.ukeyctl,
            ["vm", "accept", "office", "--component", "disk-vda"],
            environment: ["UKEY_SOCKET": f.daemon.socketPath]
        )
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let prepared = try Self.hook(f, "prepare", "begin", xml: guest.xml(session: try Self.ticket(f)))
        #expect(prepared.status == 0, "\(prepared.stderr)")
        try Self.guestWrites(guest, "an attacker's write while QEMU failed to start")
        let failed = try Self.stop(f, guest)
        #expect(failed.stderr.contains("never came up"), "\(failed.stderr)")
        let after = try Self.start(f, guest)
        #expect(after.status == 1 && after.stderr.contains("changed-since-stop"), "\(after.stderr)")
        #expect(try Self.stop(f, guest).status == 0)
    }

    @Test("a file renamed over the disk's path while the VM runs is not sealed at its stop: the next start is refused")
    func swappedWhileRunning() throws {
        let guest = try Guest()
        let f = try Self.fixture(guest)
        #expect(try Self.start(f, guest).status == 0)
        // QEMU writes the file it opened; someone puts another at its path.
        let copy = try Data(contentsOf: URL(fileURLWithPath: guest.overlay)) + Data("the attacker's disk".utf8)
        try copy.write(to: URL(fileURLWithPath: guest.dir.file("swap.qcow2")))
        #expect(rename(guest.dir.file("swap.qcow2"), guest.overlay) == 0)
        let stopped = try Self.stop(f, guest)
        #expect(stopped.stderr.contains("is not the file the VM started on"), "\(stopped.stderr)")
        #expect(try Self.records(f, "vm-state-sealed").isEmpty)
        #expect(try Self.records(f, "vm-state-unsealed").count == 1)
        let refused = try Self.start(f, guest)
        #expect(refused.status == 1 && refused.stderr.contains("changed-since-stop"), "\(refused.stderr)")
    }

    @Test(
        "a start that never came up after one that did (no release between) seals nothing; a writable component is never measured by digest; a NUL in a path is refused"
    )
    func staleStartSealsNothing() throws {
        let guest = try Guest()
        let f = try Self.fixture(guest)
        #expect(try Self.start(f, guest).status == 0)
        // No release (the hook failed, ukey-qemu was killed): the VM is started again, and this
        // time QEMU never comes up, while someone writes the disk.
        let prepared = try Self.hook(f, "prepare", "begin", xml: guest.xml(session: try Self.ticket(f)))
        #expect(prepared.status == 0, "\(prepared.stderr)")
        try Self.guestWrites(guest, "written while no QEMU ran")
        let stopped = try Self.stop(f, guest)
        #expect(stopped.stderr.contains("never came up"), "\(stopped.stderr)")
        #expect(try Self.records(f, "vm-state-sealed").isEmpty)
        let refused = try Self.start(f, guest)
        #expect(refused.status == 1 && refused.stderr.contains("changed-since-stop"), "\(refused.stderr)")
        _ = try Self.stop(f, guest)
        // By digest: refused, whatever the digest says (the stop could not seal what ukeyd never hashed).
        let connection = try f.daemon.connect()
        #expect(throws: VarlinkError.self) {
            try connection.call(
                "io.ukey.Boot.Measure",
                ["entity": "office", "component": "disk-vda", "digest": .string(try guest.digest(guest.overlay))]
            )
        }
        do {
            _ = try connection.call(
                "io.ukey.Boot.Measure",
                ["entity": "office", "component": "disk-vda", "digest": .string(try guest.digest(guest.overlay))]
            )
        } catch let error as VarlinkError {
            #expect(
                error.name == "io.ukey.Boot.CannotHash"
                    && (error.parameters["reason"]?.stringValue ?? "").contains("never by digest"),
                "\(error)"
            )
        }
        do {
            _ = try connection.call(
                "io.ukey.Boot.AcceptState",
                ["entity": "office", "path": .string(guest.overlay + "\u{0}.evil")]
            )
            Issue.record("a path with a NUL was taken")
        } catch let error as VarlinkError {
            #expect(error.name == "org.varlink.service.InvalidParameter", "\(error)")
        }
    }

    @Test(
        "a parent held open for writing (a shared writable mapping) is never taken from the cache: a change through the mapping, which moves no time, is found"
    )
    func writerDefeatsCache() throws {
        let guest = try Guest()
        let f = try Self.fixture(guest)
        // A process maps the parent shared and writable, and dirties a page with the bytes it has.
        let script = """
            import mmap, os, sys
            fd = os.open(sys.argv[1], os.O_RDWR)
            m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            m[-1:] = m[-1:]
            print("mapped", flush=True)
            sys.stdin.readline()
            m[-1:] = bytes([m[-1] ^ 0x5a])
            m.flush()
            print("changed", flush=True)
            """
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        writer.arguments = ["-c", script, guest.base]
        let input = Pipe()
        let output = Pipe()
        writer.standardInput = input
        writer.standardOutput = output
        try writer.run()
        defer { if writer.isRunning { writer.terminate() } }
        #expect(String(decoding: output.fileHandleForReading.readData(ofLength: 7), as: UTF8.self) == "mapped\n")
        for _ in 0..<2 {
            #expect(try Self.start(f, guest).status == 0)
            #expect(try Self.stop(f, guest).status == 0)
        }
        let measures = try Self.records(f, "measure").filter { $0["subject"]?["entity"] == "debian-base" }
        #expect(
            measures.count == 2 && measures.allSatisfy { $0["subject"]?["cached"] == nil },
            "a file mapped writable was taken from the cache: \(measures)"
        )
        // The change through the mapping (no page fault, so no time moves), then the writer goes.
        input.fileHandleForWriting.write(Data("go\n".utf8))
        _ = output.fileHandleForReading.readData(ofLength: 8)
        writer.waitUntilExit()
        let refused = try Self.start(f, guest)
        #expect(
            refused.status == 1 && refused.stderr.contains("debian-base/image is untrusted (digest-mismatch)"),
            "\(refused.stderr)"
        )
    }

    @Test(
        "kill -9 of ukeyd while a release hashes and seals a large disk loses nothing acknowledged: the VM is sealed, or its next start is refused changed-since-stop"
    )
    func killDuringRelease() throws {
        let guest = try Guest()
        let f = try Self.fixture(guest)
        // A disk large enough that its hash takes a while (a guest that wrote 128 MiB).
        for delay in [0.02, 0.25] {
            #expect(try Self.start(f, guest).status == 0)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: guest.overlay))
            try handle.seekToEnd()
            for block in 0..<16 {
                try handle.write(
                    contentsOf: Data(repeating: UInt8(truncatingIfNeeded: block &+ Int(delay * 100)), count: 8 << 20)
                )
            }
            try handle.close()
            let now = try guest.digest(guest.overlay)
            let socket = f.daemon.socketPath
            let release = Thread {
                _ = try? VarlinkConnection(path: socket, timeout: 30).call("io.ukey.Boot.Release", ["entity": "office"])
            }
            release.start()
            usleep(UInt32(delay * 1_000_000))
            f.daemon.kill9()
            try f.daemon.start()
            // Either it was sealed before the kill, or the next start is refused: never trusted on an unsealed disk.
            let states = try f.daemon.call("io.ukey.Boot.States", ["entity": "office"])
            let sealed = states["vms"]?.arrayValue?.first?["components"]?.arrayValue?.first?["sealed"]?.stringValue
            // libvirt does not repeat a release whose hook failed: the next thing is a start.
            let next = try Self.start(f, guest)
            if sealed == now {
                #expect(next.status == 0, "sealed as \(now) before the kill, yet refused: \(next.stderr)")
            } else {
                #expect(
                    next.status == 1 && next.stderr.contains("changed-since-stop"),
                    "unsealed (\(sealed ?? "none")), yet: \(next.stderr)"
                )
                _ = try Self.stop(f, guest)
                #expect(
                    try ExternalTool.run(
                        Self.ukeyctl,
                        ["vm", "accept", "office"],
                        environment: ["UKEY_SOCKET": f.daemon.socketPath]
                    ).status == 0
                )
                #expect(try Self.start(f, guest).status == 0)
            }
            _ = try Self.stop(f, guest)
        }
    }

    @Test(
        "the state directory put back from before a seal: refused (on a TPM: the store's counter; elsewhere: changed-since-stop)"
    )
    func olderStateDirectory() throws {
        let guest = try Guest()
        let f = try Self.fixture(guest)
        #expect(try Self.start(f, guest).status == 0)
        try Self.guestWrites(guest, "day 1")
        #expect(try Self.stop(f, guest).status == 0)
        f.daemon.stop()
        let saved = try TemporaryDirectory("ukey-state-copy")
        _ = try ExternalTool.run("/bin/cp", ["-a", f.daemon.stateDirectory, saved.file("state")])
        try f.daemon.start()
        try LibvirtHookTests.newBoot(f, vmm: Self.vmm)
        #expect(try Self.start(f, guest).status == 0)
        try Self.guestWrites(guest, "day 2")
        #expect(try Self.stop(f, guest).status == 0)
        f.daemon.stop()
        _ = try ExternalTool.run("/bin/rm", ["-rf", f.daemon.stateDirectory])
        _ = try ExternalTool.run("/bin/cp", ["-a", saved.file("state"), f.daemon.stateDirectory])
        do {
            try f.daemon.start()
        } catch {
            // The TPM's counter is ahead of the store: ukeyd does not start on it at all.
            #expect(f.daemon.backend == .tpm, "ukeyd refused the older store: \(error)")
            return
        }
        try LibvirtHookTests.newBoot(f, vmm: Self.vmm)
        let refused = try Self.start(f, guest)
        #expect(refused.status == 1 && refused.stderr.contains("changed-since-stop"), "\(refused.stderr)")
    }

    @Test(
        "a parent image is hashed once per boot: a later start over it is cached (in the reply and the audit record); changed in place with its mtime put back, it is hashed again and refused; reuse-measurements = false hashes every time"
    )
    func parentsCached() throws {
        let guest = try Guest()
        let f = try Self.fixture(guest)
        #expect(try Self.start(f, guest).status == 0)
        #expect(try Self.stop(f, guest).status == 0)
        #expect(try Self.start(f, guest).status == 0)
        #expect(try Self.stop(f, guest).status == 0)
        let measures = try Self.records(f, "measure").filter { $0["subject"]?["entity"] == "debian-base" }
        #expect(
            measures.count == 2 && measures.first?["subject"]?["cached"] == nil
                && measures.last?["subject"]?["cached"] == true,
            "\(measures)"
        )
        // The overlay (writable) is never taken from the cache.
        let disks = try Self.records(f, "measure").filter { $0["subject"]?["component"] == "disk-vda" }
        #expect(disks.count == 2 && disks.allSatisfy { $0["subject"]?["cached"] == nil }, "\(disks)")

        // One byte of the parent changes in place, same size, its mtime put back.
        var info = stat()
        #expect(stat(guest.base, &info) == 0)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: guest.base))
        try handle.seek(toOffset: UInt64(info.st_size) - 1)
        let last = try handle.read(upToCount: 1) ?? Data([0])
        try handle.seek(toOffset: UInt64(info.st_size) - 1)
        try handle.write(contentsOf: Data([last[0] ^ 0x5a]))
        try handle.close()
        var times = [info.st_atim, info.st_mtim]
        #expect(utimensat(AT_FDCWD, guest.base, &times, 0) == 0)
        var now = stat()
        #expect(
            stat(guest.base, &now) == 0 && now.st_mtim.tv_sec == info.st_mtim.tv_sec
                && now.st_mtim.tv_nsec == info.st_mtim.tv_nsec && now.st_size == info.st_size
        )
        let refused = try Self.start(f, guest)
        #expect(
            refused.status == 1 && refused.stderr.contains("debian-base/image is untrusted (digest-mismatch)"),
            "a parent changed in place was taken from the cache: \(refused.stderr)"
        )
    }

    @Test("reuse-measurements = false: every start hashes the parent")
    func reuseOff() throws {
        let guest = try Guest()
        try guest.dir.write("ukeyd.toml", Array("[boot]\nreuse-measurements = false\n".utf8))
        let f = try Self.fixture(guest, arguments: ["--config", guest.dir.file("ukeyd.toml")])
        for _ in 0..<2 {
            #expect(try Self.start(f, guest).status == 0)
            #expect(try Self.stop(f, guest).status == 0)
        }
        let measures = try Self.records(f, "measure").filter { $0["subject"]?["entity"] == "debian-base" }
        #expect(measures.count == 2 && measures.allSatisfy { $0["subject"]?["cached"] == nil }, "\(measures)")
    }

    @Test(
        "enroll-domain: the VM's own disk is writable, its parent not; a second VM over the same parent reuses it; a parent that differs is refused naming both digests"
    )
    func enrollSecondVM() throws {
        let guest = try Guest()
        let qemuImg = ExternalTool("qemu-img")
        #expect(
            try qemuImg.run([
                "create", "-q", "-f", "qcow2", "-b", "debian-base.qcow2", "-F", "qcow2", guest.dir.file("desk2.qcow2"),
            ]).status == 0
        )
        try guest.dir.write(
            "policy.yaml",
            Array(
                "version: 2\nmode: enforce\nentities:\n  - name: vmm\n    parent: root\n    kind: host\n    components:\n      - name: kernel\n        digest: \(Self.vmm)\n"
                    .utf8
            )
        )
        try guest.dir.write("office.xml", Array(guest.xml(session: nil).utf8))
        let desk2 = guest.xml(session: nil).replacingOccurrences(of: ">office<", with: ">desk2<").replacingOccurrences(
            of: "office.qcow2",
            with: "desk2.qcow2"
        )
        try guest.dir.write("desk2.xml", Array(desk2.utf8))
        let first = try ExternalTool.run(
            Self.ukeyctl,
            ["policy", "enroll-domain", guest.dir.file("office.xml"), "--user-vm", "-o", guest.dir.file("policy.yaml")]
        )
        #expect(first.status == 0, "\(first.stderr)")
        let text = try String(contentsOfFile: guest.dir.file("policy.yaml"), encoding: .utf8)
        let overlayDigest = try guest.digest(guest.overlay)
        let baseDigest = try guest.digest(guest.base)
        #expect(text.contains("office.qcow2\n        digest: \(overlayDigest)\n        writable: true"), "\(text)")
        #expect(
            text.contains("debian-base.qcow2\n        digest: \(baseDigest)\n")
                && !text.contains("debian-base.qcow2\n        digest: \(baseDigest)\n        writable"),
            "\(text)"
        )
        let second = try ExternalTool.run(
            Self.ukeyctl,
            ["policy", "enroll-domain", guest.dir.file("desk2.xml"), "--user-vm", "-o", guest.dir.file("policy.yaml")]
        )
        #expect(second.status == 0 && second.stderr.contains("debian-base already there"), "\(second.stderr)")
        let both = try String(contentsOfFile: guest.dir.file("policy.yaml"), encoding: .utf8)
        #expect(
            both.components(separatedBy: "- name: debian-base").count == 2 && both.contains("- name: desk2"),
            "\(both)"
        )
        // The parent changed since it was enrolled: a third VM over it is refused, naming both.
        let oldBase = try guest.digest(guest.base)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: guest.base))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0]))
        try handle.close()
        let third = guest.xml(session: nil).replacingOccurrences(of: ">office<", with: ">desk3<").replacingOccurrences(
            of: "office.qcow2",
            with: "desk2.qcow2"
        )
        try guest.dir.write("desk3.xml", Array(third.utf8))
        let refused = try ExternalTool.run(
            Self.ukeyctl,
            ["policy", "enroll-domain", guest.dir.file("desk3.xml"), "--user-vm", "-o", guest.dir.file("policy.yaml")]
        )
        let newBase = try guest.digest(guest.base)
        #expect(
            refused.status == 2 && refused.stderr.contains(oldBase) && refused.stderr.contains(newBase),
            "\(refused.stderr)"
        )
    }
}
