import Foundation
import Testing
import UkeyClient
import UkeyTesting
import UkeyVarlink
#if canImport(Glibc)
import Glibc
#endif

/// A VM's vTPM, run by ukeyd through the libvirt hook as libvirt runs it: started with real
/// swtpm only for a trusted start (its state made by swtpm_setup, encrypted with a key from the
/// sealed store, its EK certified by the token's vTPM sub-CA through `ukey-vtpm-certs`), stopped
/// at the release, never started for a tampered start or a TPM ukeyd does not run.
@Suite(
    "A VM's vTPM: started by ukeyd for a trusted start only, EK certified by the vTPM CA, state encrypted, stopped at release",
    .serialized,
    .enabled(if: ExternalTool("qemu-img").shouldRun, "\(ExternalTool("qemu-img").skipReason)"),
    .enabled(if: ExternalTool("swtpm").shouldRun, "\(ExternalTool("swtpm").skipReason)")
)
struct VTPMTests {
    typealias Guest = LibvirtHookTests.Guest
    static let vmm = VMStateTests.vmm
    static let backend = TestBackend.fromEnvironment

    static func tpmElement(_ path: String) -> String {
        """

            <tpm model='tpm-crb'>
              <backend type='external'>
                <source type='unix' mode='connect' path='\(path)'/>
              </backend>
            </tpm>
        """
    }

    static func vtpmDirectory(_ f: DaemonFixture) -> String { f.daemon.runtimeDirectory + "/vtpm" }

    static func hook(
        _ f: DaemonFixture,
        _ operation: String,
        _ phase: String,
        xml: String
    ) throws -> ExternalTool.Result {
        try VMStateTests.hook(f, operation, phase, xml: xml, environment: ["UKEY_VTPM_DIR": vtpmDirectory(f)])
    }

    /// Stops what a failed test left running: ukeyd keeps a VM's vTPM through its own restart
    /// (a running guest keeps its TPM), so only a release stops it.
    static func stopLeftovers(_ f: DaemonFixture) {
        for pid in swtpmProcesses(serving: f.daemon.stateDirectory + "-vtpm/") { kill(pid, SIGKILL) }
    }

    static func fixture(
        _ guest: Guest,
        vtpm: Bool = true,
        mode: String = "enforce",
        arguments: [String] = []
    ) throws -> DaemonFixture {
        let f = try DaemonFixture(arguments: arguments)
        // swtpm runs as tss, which must reach its state beside the daemon's (0711: no listing).
        chmod(f.daemon.directory.path, 0o711)
        var policy = try guest.policy(vmm: vmm, writable: true)
        if vtpm {
            policy = policy.replacingOccurrences(of: "    kind: user-vm\n", with: "    kind: user-vm\n    vtpm: true\n")
        }
        policy = policy.replacingOccurrences(of: "mode: enforce", with: "mode: \(mode)")
        try f.loadPolicy(policy)
        try LibvirtHookTests.newBoot(f, vmm: vmm)
        return f
    }

    static func xml(_ f: DaemonFixture, _ guest: Guest, socket: String? = nil) throws -> String {
        guest.xml(
            session: try VMStateTests.ticket(f),
            extra: tpmElement(socket ?? vtpmDirectory(f) + "/office.sock")
        )
    }

    /// The state directory of office's vTPM (beside the daemon's state, which tss cannot reach).
    static func vtpmState(_ f: DaemonFixture) -> String { f.daemon.stateDirectory + "-vtpm/office" }

    /// The swtpm processes whose command line names `path` (a VM's state directory).
    static func swtpmProcesses(serving path: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry),
                let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { return nil }
            let words = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard words.first.map({ $0.hasSuffix("swtpm") }) == true, words.contains(where: { $0.contains(path) })
            else { return nil }
            return pid
        }
    }

    /// The state directory's files and their bytes: what an untrusted start must leave as it was.
    static func stateFiles(_ f: DaemonFixture) -> [String: Data] {
        let directory = vtpmState(f)
        var files: [String: Data] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            files[name] = FileManager.default.contents(atPath: directory + "/" + name)
        }
        return files
    }

    @Test(
        "a trusted start gets its vTPM: swtpm on ukeyd's socket, state made and encrypted, the EK certificate chains to the token's root under the vTPM policy and names the VM; the release stops it; the next start finds the same vTPM"
    )
    func trustedStart() throws {
        let guest = try Guest()
        let f = try Self.fixture(guest)
        defer { Self.stopLeftovers(f) }
        let socket = Self.vtpmDirectory(f) + "/office.sock"
        let xml = try Self.xml(f, guest)
        let prepared = try Self.hook(f, "prepare", "begin", xml: xml)
        if Self.backend == .sm2 {
            #expect(prepared.status == 1 && prepared.stderr.contains("SM2"), "\(prepared.stderr)")
            return
        }
        #expect(prepared.status == 0, "\(prepared.stderr)")
        #expect(access(socket, F_OK) == 0, "no control socket at \(socket)")
        let processes = Self.swtpmProcesses(serving: Self.vtpmState(f))
        #expect(processes.count == 1, "swtpm processes for \(socket): \(processes)")
        // Never root: a guest talks to it.
        let status = (try? String(contentsOfFile: "/proc/\(processes.first ?? 0)/status", encoding: .utf8)) ?? ""
        let uid = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(separator: "\t").dropFirst().first
        #expect(uid != nil && uid != "0", "swtpm runs as uid \(uid ?? "?")")

        // The chain a guest's verifier checks: EK -> vTPM CA -> root, under the vTPM policy.
        let chain = try f.daemon.call("io.ukey.VTPM.Certificate", ["entity": "office"])
        let dir = try TemporaryDirectory("ukey-vtpm-chain")
        for name in ["endorsement", "endorsementECC", "authority", "root", "platform"] {
            try dir.write("\(name).pem", Array((chain[name]?.stringValue ?? "").utf8))
        }
        let verified = try ExternalTool.run(
            "/usr/bin/openssl",
            [
                "verify", "-CAfile", dir.file("root.pem"), "-untrusted", dir.file("authority.pem"), "-policy",
                "2.25.10392339744558737358530141729444115455.2.3", "-explicit_policy", "-x509_strict",
                dir.file("endorsement.pem"),
            ]
        )
        #expect(verified.status == 0, "openssl verify: \(verified.stdout) \(verified.stderr)")
        let text = try ExternalTool.run(
            "/usr/bin/openssl",
            ["x509", "-in", dir.file("endorsement.pem"), "-noout", "-text", "-certopt", "no_sigdump"]
        )
        #expect(text.stdout.contains("2.23.133.8.1"), "no tcg-kp-EKCertificate: \(text.stdout)")
        #expect(text.stdout.contains("office"), "the EK certificate does not name the VM: \(text.stdout)")
        #expect(text.stdout.contains("Key Encipherment"), "\(text.stdout)")
        let platform = chain["platform"]?.stringValue ?? ""
        #expect(platform.contains("BEGIN CERTIFICATE"), "no platform certificate")
        let ecc = chain["endorsementECC"]?.stringValue ?? ""
        #expect(ecc.contains("BEGIN CERTIFICATE"), "no ECC EK certificate")

        // Encrypted at rest: swtpm cannot open the state without ukeyd's key.
        let state = Self.stateFiles(f)
        #expect(state["tpm2-00.permall"] != nil, "no state: \(state.keys.sorted())")
        let copy = try TemporaryDirectory("ukey-vtpm-copy")
        try copy.write("tpm2-00.permall", Array(state["tpm2-00.permall"] ?? Data()))
        let keyless = try ExternalTool.run(
            "/usr/bin/timeout",
            [
                "10", "/usr/bin/swtpm", "socket", "--tpm2", "--tpmstate", "dir=\(copy.path)", "--ctrl",
                "type=unixio,path=\(copy.file("ctrl.sock"))", "--flags", "not-need-init,startup-clear",
                "--server", "type=unixio,path=\(copy.file("server.sock"))", "--terminate",
            ]
        )
        // A plain state would start (and be stopped by timeout, 124); an encrypted one is refused.
        #expect(
            keyless.status == 1 && keyless.stderr.contains("Could not initialize libtpms"),
            "swtpm opened ukeyd's vTPM state without its key: \(keyless.status) \(keyless.stderr)"
        )

        // The release stops it; the next trusted start gets the same vTPM (state kept, not made again).
        let released = try Self.hook(f, "release", "end", xml: guest.xml(session: nil, extra: Self.tpmElement(socket)))
        #expect(released.status == 0, "\(released.stderr)")
        #expect(Self.swtpmProcesses(serving: Self.vtpmState(f)).isEmpty, "swtpm still runs after the release")
        #expect(access(socket, F_OK) != 0, "the socket outlived the release")
        let again = try Self.hook(f, "prepare", "begin", xml: try Self.xml(f, guest))
        #expect(again.status == 0, "\(again.stderr)")
        #expect(Self.swtpmProcesses(serving: Self.vtpmState(f)).count == 1)
        let chainAgain = try f.daemon.call("io.ukey.VTPM.Certificate", ["entity": "office"])
        #expect(chainAgain["endorsement"] == chain["endorsement"], "the vTPM was made again")
        let starts = try VMStateTests.records(f, "vtpm-start")
        #expect(starts.count == 2 && starts.first?["subject"]?["created"] == true, "\(starts)")
        _ = try Self.hook(f, "release", "end", xml: guest.xml(session: nil, extra: Self.tpmElement(socket)))
        #expect(Self.swtpmProcesses(serving: Self.vtpmState(f)).isEmpty)
    }

    @Test(
        "no vTPM for a tampered start (in audit mode too), a VM the policy gives none, a TPM ukeyd does not run, or a certificate asked without the setup's ticket; the state is left as it was"
    )
    func refusals() throws {
        guard Self.backend != .sm2 else { return }
        let guest = try Guest()
        let f = try Self.fixture(guest, mode: "audit")
        defer { Self.stopLeftovers(f) }
        let socket = Self.vtpmDirectory(f) + "/office.sock"
        // Made once by a trusted start, then released.
        #expect(try Self.hook(f, "prepare", "begin", xml: try Self.xml(f, guest)).status == 0)
        _ = try Self.hook(f, "release", "end", xml: guest.xml(session: nil, extra: Self.tpmElement(socket)))
        let before = Self.stateFiles(f)
        #expect(!before.isEmpty)

        // The kernel tampered with: even in audit mode (every load let through), the vTPM's key
        // stays sealed and the start is refused; no swtpm, the state untouched.
        try guest.dir.write("vmlinuz", Array("a guest kernel, with a rootkit".utf8))
        let tampered = try Self.hook(f, "prepare", "begin", xml: try Self.xml(f, guest))
        #expect(
            tampered.status == 1 && tampered.stderr.contains("no vTPM for office")
                && tampered.stderr.contains("untrusted"),
            "\(tampered.stderr)"
        )
        #expect(Self.swtpmProcesses(serving: Self.vtpmState(f)).isEmpty, "swtpm started for a tampered start")
        #expect(Self.stateFiles(f) == before, "the vTPM state changed on a tampered start")

        // A TPM on a socket ukeyd does not run: refused before anything is measured.
        let elsewhere = try Self.hook(
            f,
            "prepare",
            "begin",
            xml: try Self.xml(f, guest, socket: "/run/swtpm/office.sock")
        )
        #expect(
            elsewhere.status == 1 && elsewhere.stderr.contains("a swtpm ukeyd does not run"),
            "\(elsewhere.stderr)"
        )
        // Another VM's vTPM socket: refused.
        let other = try Self.hook(
            f,
            "prepare",
            "begin",
            xml: try Self.xml(f, guest, socket: Self.vtpmDirectory(f) + "/payroll.sock")
        )
        #expect(other.status == 1 && other.stderr.contains("vTPM"), "\(other.stderr)")

        // A certificate without a setup under way: the vTPM CA certifies nothing for the asking.
        #expect(throws: VarlinkError.self) {
            try f.daemon.call(
                "io.ukey.VTPM.Certify",
                [
                    "entity": "office", "ticket": "00", "kind": "ek",
                    "ek": .string(String(repeating: "c3", count: 256)), "tpmManufacturer": "id:00001014",
                    "tpmModel": "swtpm", "tpmVersion": "id:20191023",
                ]
            )
        }
    }

    @Test("a VM whose entity says no vtpm gets none: the start is refused, naming the policy")
    func notInPolicy() throws {
        guard Self.backend != .sm2 else { return }
        let guest = try Guest()
        let f = try Self.fixture(guest, vtpm: false)
        defer { Self.stopLeftovers(f) }
        let refused = try Self.hook(f, "prepare", "begin", xml: try Self.xml(f, guest))
        #expect(refused.status == 1 && refused.stderr.contains("gives office no vTPM"), "\(refused.stderr)")
        #expect(Self.swtpmProcesses(serving: Self.vtpmState(f)).isEmpty)
    }

    /// One varlink call per method, as uid 65534 (a second uid with only the user role), over a
    /// plain socket: the error name each got, or "ok".
    static func asNobody(_ f: DaemonFixture, _ calls: [(String, [String: Any])]) throws -> [String] {
        let program = """
            import json, socket, sys
            s = socket.socket(socket.AF_UNIX)
            s.connect(sys.argv[1])
            for method, parameters in json.loads(sys.argv[2]):
                s.sendall(json.dumps({"method": method, "parameters": parameters}).encode() + b"\\0")
                reply = b""
                while not reply.endswith(b"\\0"):
                    reply += s.recv(65536)
                print(json.loads(reply[:-1]).get("error", "ok"))
            """
        let calls = String(
            decoding: try JSONSerialization.data(withJSONObject: calls.map { [$0.0, $0.1] }),
            as: UTF8.self
        )
        let result = try DaemonAccessTests.setpriv.run([
            "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", program,
            f.daemon.socketPath, calls,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdout.split(separator: "\n").map(String.init)
    }

    @Test(
        "another uid (nobody, the user role) cannot start a trusted VM's vTPM or have the vTPM CA certify a key; it may read the public chain",
        .enabled(if: DaemonAccessTests.setpriv.shouldRun, Comment(rawValue: DaemonAccessTests.setpriv.skipReason))
    )
    func anotherUID() throws {
        guard Self.backend != .sm2 else { return }
        let guest = try Guest()
        let f = try Self.fixture(guest, arguments: ["--socket-group", "nogroup", "--socket-mode", "0660"])
        defer { Self.stopLeftovers(f) }
        _ = try f.openToOtherUsers()
        // office measured trusted (its domain without the <tpm>, so the hook starts no vTPM).
        let prepared = try Self.hook(f, "prepare", "begin", xml: guest.xml(session: try VMStateTests.ticket(f)))
        #expect(prepared.status == 0, "\(prepared.stderr)")
        #expect(try f.state("office").state == "trusted")
        let answers = try Self.asNobody(
            f,
            [
                ("io.ukey.VTPM.Start", ["entity": "office"]),
                (
                    "io.ukey.VTPM.Certify",
                    [
                        "entity": "office", "ticket": "00", "kind": "ek", "ek": String(repeating: "c3", count: 256),
                        "tpmManufacturer": "id:00001014", "tpmModel": "swtpm", "tpmVersion": "id:20191023",
                    ]
                ),
                ("io.ukey.VTPM.Certificate", ["entity": "office"]),
            ]
        )
        #expect(
            answers == [
                "org.varlink.service.PermissionDenied", "org.varlink.service.PermissionDenied", "io.ukey.VTPM.Refused",
            ],
            "\(answers)"
        )
        #expect(Self.swtpmProcesses(serving: Self.vtpmState(f)).isEmpty, "nobody started a vTPM")
        #expect(Self.stateFiles(f).isEmpty, "nobody made a vTPM state")
    }
}
