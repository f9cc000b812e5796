import Foundation
import Testing
import UkeyPolicy
import UkeyTesting

/// `ukeyctl vm enroll-vtpm`: the domain gets ukeyd's vTPM as its TPM, the policy's entity gets
/// `vtpm: true`; what is not a VM, a second TPM, or a second mark are refused.
@Suite("ukeyctl vm enroll-vtpm")
struct UkeyctlVTPMTests {
    static func ukeyctl(_ arguments: String...) throws -> ExternalTool.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        return try ExternalTool.run(UkeyctlPolicyTests.binary, arguments, environment: environment)
    }

    static let domain = """
        <domain type='qemu'>
          <name>office</name>
          <os>
            <type arch='x86_64' machine='pc'>hvm</type>
            <kernel>/etc/hostname</kernel>
          </os>
          <devices>
            <serial type='pty'/>
          </devices>
        </domain>

        """

    static let policy = """
        version: 1
        mode: enforce
        entities:
          - name: vmm
            parent: root
            kind: host
            components:
              - name: kernel
                digest: sha256:\(String(repeating: "ab", count: 32))
          - name: office
            parent: vmm
            kind: user-vm
            components:
              - name: kernel
                digest: sha256:\(String(repeating: "cd", count: 32))

        """

    @Test(
        "the domain gets <tpm> on ukeyd's socket, and enroll-domain then writes vtpm: true; the entity gets vtpm: true, which the parser reads; a host entity or a second run is refused"
    )
    func enrollVTPM() throws {
        let dir = try TemporaryDirectory("ukeyctl-vtpm")
        try dir.write("office.xml", Array(Self.domain.utf8))
        try dir.write("policy.yaml", Array(Self.policy.utf8))
        let enrolled = try Self.ukeyctl(
            "vm",
            "enroll-vtpm",
            "office",
            "--domain",
            dir.file("office.xml"),
            "--policy",
            dir.file("policy.yaml"),
            "--vtpm-dir",
            "/run/ukey/vtpm"
        )
        #expect(enrolled.status == 0, "\(enrolled.stderr)")
        let xml = try String(contentsOfFile: dir.file("office.xml"), encoding: .utf8)
        #expect(
            xml.contains("<backend type='external'>") && xml.contains("path='/run/ukey/vtpm/office.sock'"),
            "\(xml)"
        )
        let entities = try Self.ukeyctl("policy", "enroll-domain", dir.file("office.xml"), "--user-vm")
        #expect(
            entities.status == 0 && entities.stdout.contains("    vtpm: true\n"),
            "\(entities.stdout) \(entities.stderr)"
        )

        let text = try String(contentsOfFile: dir.file("policy.yaml"), encoding: .utf8)
        let parsed = try PolicyParser.parse(text, file: "policy.yaml")
        #expect(parsed.entities.first { $0.name == "office" }?.vtpm == true)
        #expect(parsed.entities.first { $0.name == "vmm" }?.vtpm == false)

        let again = try Self.ukeyctl("vm", "enroll-vtpm", "office", "--domain", dir.file("office.xml"))
        #expect(again.status != 0 && again.stderr.contains("has a <tpm> already"), "\(again.stderr)")
        let twice = try Self.ukeyctl("vm", "enroll-vtpm", "office", "--policy", dir.file("policy.yaml"))
        #expect(twice.status != 0 && twice.stderr.contains("vtpm: line already"), "\(twice.stderr)")
        let host = try Self.ukeyctl("vm", "enroll-vtpm", "vmm", "--policy", dir.file("policy.yaml"))
        #expect(host.status != 0 && host.stderr.contains("not a VM"), "\(host.stderr)")
    }
}
