import Crypto
import Foundation
import Testing
import UkeyClient
import UkeyTesting
import UkeyVarlink
#if canImport(Glibc)
import Glibc
#endif

/// The libvirt hook as libvirt runs it (`50-ukey DOMAIN prepare begin -`, the domain XML on stdin)
/// against a real ukeyd, on a guest made of real files: a kernel, an initrd, and a qcow2 overlay
/// on a qcow2 base image made by qemu-img. (Starting the guest under libvirt and QEMU is the next
/// step of this work; here the hook's decision and its message are what is checked.)
@Suite(
    "ukey-libvirt-hook: a guest starts only when ukeyd vouches for all it loads",
    .enabled(if: ExternalTool("qemu-img").shouldRun, "\(ExternalTool("qemu-img").skipReason)")
)
struct LibvirtHookTests {
    static let hook = PackagePaths.builtProduct("ukey-libvirt-hook")

    struct Guest {
        let dir: TemporaryDirectory
        var kernel: String { dir.file("vmlinuz") }
        var initrd: String { dir.file("initrd.img") }
        var base: String { dir.file("debian-base.qcow2") }
        var overlay: String { dir.file("office.qcow2") }
        static let cmdline = "console=ttyS0 quiet"

        init() throws {
            dir = try TemporaryDirectory("ukey-guest")
            try dir.write("vmlinuz", Array("a guest kernel".utf8))
            try dir.write("initrd.img", Array("a guest initrd".utf8))
            let qemuImg = ExternalTool("qemu-img")
            #expect(try qemuImg.run(["create", "-q", "-f", "qcow2", base, "1M"]).status == 0)
            #expect(
                try qemuImg.run(["create", "-q", "-f", "qcow2", "-b", "debian-base.qcow2", "-F", "qcow2", overlay])
                    .status == 0
            )
        }

        func xml(session: String?, extra: String = "") -> String {
            """
            <domain type='kvm'>
              <name>office-1</name>
              <metadata>
                <ukey:entity xmlns:ukey="https://ukey.dev/libvirt/1"\(session.map { " session=\"\($0)\"" } ?? "")>office</ukey:entity>
              </metadata>
              <os>
                <type arch='x86_64' machine='pc'>hvm</type>
                <kernel>\(kernel)</kernel>
                <initrd>\(initrd)</initrd>
                <cmdline>\(Self.cmdline)</cmdline>
              </os>
              <devices>
                <disk type='file' device='disk'>
                  <driver name='qemu' type='qcow2'/>
                  <source file='\(overlay)'/>
                  <target dev='vda' bus='virtio'/>
                </disk>\(extra)
              </devices>
            </domain>
            """
        }

        /// QEMU's SeaBIOS, which a domain with no <loader> runs first: the hook measures it.
        /// (QEMU's data directories in its order; Debian keeps it in seabios's.)
        static let firmware =
            ["/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu"].map { "\($0)/bios-256k.bin" }
            .first { FileManager.default.fileExists(atPath: $0) }.map {
                URL(fileURLWithPath: $0).resolvingSymlinksInPath().path
            } ?? "/usr/share/seabios/bios-256k.bin"

        static func digest(_ bytes: [UInt8]) -> String {
            "sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        }

        func digest(_ path: String) throws -> String {
            Self.digest(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        }

        /// The policy, enrolled from the guest's files as they are now (`writable`: the overlay is
        /// the VM's state, sealed at each stop, as enroll-domain writes it).
        func policy(vmm: String, writable: Bool = false) throws -> String {
            """
            version: 2
            mode: enforce
            entities:
              - name: vmm
                parent: root
                kind: host
                register: 8
                components:
                  - name: kernel
                    digest: \(vmm)
              - name: debian-base
                parent: vmm
                kind: base-image
                register: 10
                components:
                  - name: image
                    digest: \(try digest(base))
              - name: office
                parent: debian-base
                kind: user-vm
                register: 11
                components:
                  - name: loader
                    digest: \(try digest(Self.firmware))
                  - name: kernel
                    digest: \(try digest(kernel))
                  - name: initrd
                    digest: \(try digest(initrd))
                  - name: cmdline
                    digest: \(Self.digest(Array(Self.cmdline.utf8)))
                  - name: disk-vda
                    digest: \(try digest(overlay))\(writable ? "\n        writable: true" : "")
            users:
              - name: alice
                roles: [office]
                vms: [office]
            """
        }
    }

    static func runHook(_ f: DaemonFixture, xml: String) throws -> ExternalTool.Result {
        try ExternalTool.run(
            hook,
            ["office-1", "prepare", "begin", "-"],
            stdin: Data(xml.utf8),
            environment: ["UKEY_SOCKET": f.daemon.socketPath, "UKEY_CONFIG": "/nonexistent"]
        )
    }

    /// A new boot, with the host's stack measured and trusted, as the host unit leaves it.
    static func newBoot(_ f: DaemonFixture, vmm: String) throws {
        _ = try f.daemon.call("io.ukey.Boot.Reset")
        #expect(
            try f.daemon.call(
                "io.ukey.Boot.Measure",
                ["entity": "vmm", "component": "kernel", "digest": .string(vmm)]
            )["load"] == true
        )
    }

    @Test(
        "trusted guest: let through; tampered kernel, tampered base image under an unchanged overlay, no logged-in user, malformed XML and ukeyd down: refused with one line naming what and why; each refusal audited"
    )
    func decisions() throws {
        let f = try DaemonFixture()
        let guest = try Guest()
        let vmm = Guest.digest(Array("the host kernel".utf8))
        try f.loadPolicy(try guest.policy(vmm: vmm))
        let session = try #require(
            try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]?.stringValue
        )

        try Self.newBoot(f, vmm: vmm)
        let trusted = try Self.runHook(f, xml: guest.xml(session: session))
        #expect(trusted.status == 0, "\(trusted.stderr)")
        #expect(try f.state("office").state == "trusted" && f.state("debian-base").state == "trusted")

        // One byte of the kernel changes.
        let kernel = try Data(contentsOf: URL(fileURLWithPath: guest.kernel))
        try (kernel + Data([0x21])).write(to: URL(fileURLWithPath: guest.kernel))
        try Self.newBoot(f, vmm: vmm)
        let badKernel = try Self.runHook(f, xml: guest.xml(session: session))
        #expect(
            badKernel.status == 1
                && badKernel.stderr
                    == "ukey: refusing to start office-1: office/kernel is untrusted (digest-mismatch)\n",
            "\(badKernel.stderr)"
        )
        try kernel.write(to: URL(fileURLWithPath: guest.kernel))

        // The base image changes under an overlay that does not.
        let base = try Data(contentsOf: URL(fileURLWithPath: guest.base))
        try (base + Data([0x00])).write(to: URL(fileURLWithPath: guest.base))
        try Self.newBoot(f, vmm: vmm)
        let badBase = try Self.runHook(f, xml: guest.xml(session: session))
        #expect(
            badBase.status == 1 && badBase.stderr.contains("debian-base/image is untrusted (digest-mismatch)"),
            "\(badBase.stderr)"
        )
        try base.write(to: URL(fileURLWithPath: guest.base))

        // A user VM without a logged-in user.
        try Self.newBoot(f, vmm: vmm)
        let anonymous = try Self.runHook(f, xml: guest.xml(session: nil))
        #expect(anonymous.status == 1 && anonymous.stderr.contains("authentication-required"), "\(anonymous.stderr)")

        // What a domain should carry, since any local user may read its XML: a start ticket. It
        // serves one start; the same XML again (a reader replaying it) is refused.
        try Self.newBoot(f, vmm: vmm)
        let ticket = try #require(
            try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1", "forVm": "office"])["ticket"]?
                .stringValue
        )
        let once = try Self.runHook(f, xml: guest.xml(session: ticket))
        #expect(once.status == 0, "\(once.stderr)")
        try Self.newBoot(f, vmm: vmm)
        let replayed = try Self.runHook(f, xml: guest.xml(session: ticket))
        #expect(replayed.status == 1 && replayed.stderr.contains("start-ticket-spent"), "\(replayed.stderr)")

        // XML that is not a domain, and a disk ukey cannot measure.
        let malformed = try Self.runHook(f, xml: "<domain><name>office-1</name>")
        #expect(malformed.status == 1 && malformed.stderr.contains("malformed"), "\(malformed.stderr)")
        let network = try Self.runHook(
            f,
            xml: guest.xml(
                session: session,
                extra:
                    "<disk type='network' device='disk'><source protocol='rbd' name='pool/x'/><target dev='vdb'/></disk>"
            )
        )
        #expect(network.status == 1 && network.stderr.contains("type 'network'"), "\(network.stderr)")

        // Each refusal by ukeyd is in the audit log.
        let measures =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "measure", "limit": 1000])["records"]?.arrayValue ?? []
        #expect(
            measures.contains {
                $0["subject"]?["entity"] == "office" && $0["subject"]?["component"] == "kernel"
                    && $0["subject"]?["load"] == false
            }
        )
        #expect(measures.contains { $0["subject"]?["entity"] == "debian-base" && $0["subject"]?["load"] == false })
        #expect(measures.contains { $0["subject"]?["reason"] == "authentication-required" })

        // Other operations pass; ukeyd down: refused, fail closed.
        #expect(
            try ExternalTool.run(
                Self.hook,
                ["office-1", "started", "begin", "-"],
                stdin: Data(),
                environment: ["UKEY_SOCKET": f.daemon.socketPath]
            ).status == 0
        )
        f.daemon.stop()
        let down = try Self.runHook(f, xml: guest.xml(session: session))
        #expect(down.status == 1 && down.stderr.contains("ukeyd cannot be reached"), "\(down.stderr)")
    }

    /// The file ukeyd hashed is the file QEMU opens: after the hook let a guest through, a file
    /// renamed over a measured one cannot be opened (as QEMU would open it) until the hook's
    /// `started begin`; the refusal is in the audit log. A domain whose entity the policy does not
    /// have, naming nothing of its own but the firmware QEMU runs anyway, is refused too.
    @Test(
        "a measured file swapped after the hash cannot be opened until the VM started; the refusal is audited; an unknown entity is refused"
    )
    func measuredIsOpened() throws {
        let f = try DaemonFixture()
        let guest = try Guest()
        let vmm = Guest.digest(Array("the host kernel".utf8))
        try f.loadPolicy(try guest.policy(vmm: vmm))
        let session = try #require(
            try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]?.stringValue
        )
        try Self.newBoot(f, vmm: vmm)
        let trusted = try Self.runHook(f, xml: guest.xml(session: session))
        #expect(trusted.status == 0, "\(trusted.stderr)")
        // The attacker's kernel, renamed into place after ukeyd hashed the good one.
        try guest.dir.write("evil", Array("an evil kernel".utf8))
        #expect(rename(guest.dir.file("evil"), guest.kernel) == 0)
        let opened = open(guest.kernel, O_RDONLY)
        let error = errno
        if opened >= 0 { close(opened) }
        #expect(opened < 0 && error == EPERM, "QEMU would have opened the swapped kernel")
        // The good initrd, untouched, opens as before.
        let initrd = open(guest.initrd, O_RDONLY)
        #expect(initrd >= 0)
        if initrd >= 0 { close(initrd) }
        // The record is queued by the guard's thread as it refuses: it reaches the log within a batch.
        var refusals: [JSONValue] = []
        for _ in 0..<50 where !refusals.contains(where: { $0["subject"]?["path"]?.stringValue == guest.kernel }) {
            refusals =
                try f.daemon.call("io.ukey.Audit.Query", ["type": "open-refused", "limit": 10])["records"]?.arrayValue
                ?? []
            if refusals.isEmpty { usleep(100_000) }
        }
        #expect(
            refusals.contains {
                $0["subject"]?["path"]?.stringValue == guest.kernel && $0["subject"]?["vm"] == "office"
            },
            "\(refusals)"
        )
        // QEMU is up: nothing of its start is held.
        #expect(
            try ExternalTool.run(
                Self.hook,
                ["office-1", "started", "begin", "-"],
                stdin: Data(guest.xml(session: session).utf8),
                environment: ["UKEY_SOCKET": f.daemon.socketPath, "UKEY_CONFIG": "/nonexistent"]
            ).status == 0
        )
        let after = open(guest.kernel, O_RDONLY)
        #expect(after >= 0, "after started begin the file is not held")
        if after >= 0 { close(after) }
        // A domain the policy does not know, naming nothing of its own: refused (its firmware is still measured).
        let stranger =
            "<domain type='qemu'><name>stranger</name><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
        let refused = try Self.runHook(f, xml: stranger)
        #expect(refused.status == 1 && refused.stderr.contains("stranger"), "\(refused.stderr)")
    }

    static func release(_ f: DaemonFixture, xml: String) throws -> ExternalTool.Result {
        try ExternalTool.run(
            hook,
            ["office-1", "release", "end", "-"],
            stdin: Data(xml.utf8),
            environment: ["UKEY_SOCKET": f.daemon.socketPath, "UKEY_CONFIG": "/nonexistent"]
        )
    }

    /// The rule for a VM that stops and starts again within one boot (docs/operations.md's chain rules).
    @Test(
        "a stopped VM is released and measured afresh on its next start; a tainted one stays refused for the boot, released or not, also across a kill -9; its shared base stays trusted"
    )
    func stopAndStartAgain() throws {
        let f = try DaemonFixture()
        let guest = try Guest()
        let vmm = Guest.digest(Array("the host kernel".utf8))
        try f.loadPolicy(try guest.policy(vmm: vmm))
        var session = try #require(
            try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]?.stringValue
        )
        try Self.newBoot(f, vmm: vmm)
        #expect(try Self.runHook(f, xml: guest.xml(session: session)).status == 0)
        // Stopped: pending again, its base untouched; started again: measured afresh, trusted.
        #expect(try Self.release(f, xml: guest.xml(session: session)).status == 0)
        #expect(try f.state("office").state == "pending" && f.state("debian-base").state == "trusted")
        f.daemon.kill9()
        try f.daemon.start()
        #expect(try f.state("office").state == "pending", "the release was replayed from the journal")
        // Sessions do not outlive ukeyd: the user logs in again.
        session = try #require(
            try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]?.stringValue
        )
        let again = try Self.runHook(f, xml: guest.xml(session: session))
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try f.state("office").state == "trusted")
        // Started with a tampered kernel: refused. Stopped, the kernel put back, started again:
        // still refused, for the rest of this boot.
        let kernel = try Data(contentsOf: URL(fileURLWithPath: guest.kernel))
        #expect(try Self.release(f, xml: guest.xml(session: session)).status == 0)
        try (kernel + Data([0x21])).write(to: URL(fileURLWithPath: guest.kernel))
        #expect(try Self.runHook(f, xml: guest.xml(session: session)).status == 1)
        try kernel.write(to: URL(fileURLWithPath: guest.kernel))
        let stillTainted = try Self.release(f, xml: guest.xml(session: session))
        #expect(
            stillTainted.status == 0 && stillTainted.stderr.contains("stays untrusted for this boot (digest-mismatch)"),
            "\(stillTainted.stderr)"
        )
        let refused = try Self.runHook(f, xml: guest.xml(session: session))
        // Tainted for the boot: the first component asked about (the firmware) already says so.
        #expect(
            refused.status == 1 && refused.stderr.contains("office/loader is untrusted (digest-mismatch)"),
            "\(refused.stderr)"
        )
        f.daemon.kill9()
        try f.daemon.start()
        #expect(try f.state("office").state == "untrusted")
        // Releases are audited.
        let releases =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "release", "limit": 100])["records"]?.arrayValue ?? []
        #expect(releases.count == 3 && releases.last?["subject"]?["state"] == "untrusted", "\(releases)")
    }

    /// The operator's path: enrol a known-good domain in one command, sign, load; the hook then
    /// asks exactly what was enrolled (one mapping for both).
    @Test(
        "ukeyctl policy enroll-domain writes the entities the hook asks about: with them loaded, the guest starts; a clash is refused"
    )
    func enrollDomain() throws {
        let f = try DaemonFixture()
        let guest = try Guest()
        let vmm = Guest.digest(Array("the host kernel".utf8))
        let base = """
            version: 2
            mode: enforce
            entities:
              - name: vmm
                parent: root
                kind: host
                components:
                  - name: kernel
                    digest: \(vmm)

            users:
              - name: alice
                roles: [office]
                vms: [office]
            """
        try guest.dir.write("policy.yaml", Array(base.utf8))
        let session = try #require(
            try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]?.stringValue
        )
        try guest.dir.write("office.xml", Array(guest.xml(session: session).utf8))
        let ukeyctl = PackagePaths.builtProduct("ukeyctl")
        let printed = try ExternalTool.run(
            ukeyctl,
            ["policy", "enroll-domain", guest.dir.file("office.xml"), "--user-vm"]
        )
        #expect(
            printed.status == 0 && printed.stdout.contains("- name: debian-base")
                && printed.stdout.contains("- name: office") && printed.stdout.contains("kind: user-vm"),
            "\(printed.stdout)\(printed.stderr)"
        )
        #expect(printed.stderr.contains("<ukey:entity xmlns:ukey=\"https://ukey.dev/libvirt/1\">office</ukey:entity>"))
        let merged = try ExternalTool.run(
            ukeyctl,
            ["policy", "enroll-domain", guest.dir.file("office.xml"), "--user-vm", "-o", guest.dir.file("policy.yaml")]
        )
        #expect(merged.status == 0, "\(merged.stderr)")
        let policy = try String(contentsOfFile: guest.dir.file("policy.yaml"), encoding: .utf8)
        try f.loadPolicy(policy)
        try Self.newBoot(f, vmm: vmm)
        let started = try Self.runHook(f, xml: guest.xml(session: session))
        #expect(started.status == 0, "\(started.stderr)")
        #expect(try f.state("office").state == "trusted")
        // Enrolling it twice is refused, and the file is left as it was.
        let again = try ExternalTool.run(
            ukeyctl,
            ["policy", "enroll-domain", guest.dir.file("office.xml"), "-o", guest.dir.file("policy.yaml")]
        )
        #expect(again.status == 2 && again.stderr.contains("already has an entity 'office'"), "\(again.stderr)")
        #expect(try String(contentsOfFile: guest.dir.file("policy.yaml"), encoding: .utf8) == policy)
    }
}
