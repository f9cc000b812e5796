import Foundation
import Testing
import UkeyTesting
import UkeyVarlink

/// The host's own boot measurement (`ukeyctl measure-host`, run by `ukey-measure-host.service`
/// before libvirt): the first slice of the real-hypervisor work.
@Suite("ukeyctl measure-host: the host's hypervisor stack, measured before libvirt starts")
struct MeasureHostTests {
    static func measureHost(_ f: DaemonFixture) throws -> ExternalTool.Result {
        try ExternalTool.run(PackagePaths.builtProduct("ukeyctl"), ["measure-host", "--socket", f.daemon.socketPath])
    }

    @Test("an intact host may load (exit 0); every component the policy names was measured from its file")
    func intactHost() throws {
        let f = try DaemonFixture()
        let result = try Self.measureHost(f)
        #expect(result.status == 0 && result.stdout.contains("vmm: may load"), "\(result.stdout)\(result.stderr)")
        let chain = try f.daemon.call("io.ukey.Boot.Chain")["entities"]?.arrayValue ?? []
        let vmm = try #require(chain.first { $0["name"] == "vmm" })
        #expect(vmm["state"] == "trusted")
        #expect(vmm["measured"]?.objectValue?.count == vmm["components"]?.arrayValue?.count)
    }

    @Test(
        "a changed qemu binary: exit 1 naming the component and the reason, the VMM stays untrusted, and the refusal is audited; ukeyd down: exit 3"
    )
    func tamperedHost() throws {
        let f = try DaemonFixture()
        let policy = try UkeyPolicyLookup(text: f.policyText)
        let qemu = try #require(policy.components("vmm").first { $0.0 == "qemu" }?.1)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: qemu))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0x90]))
        try handle.close()
        let result = try Self.measureHost(f)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(
            result.stderr.contains("must not load") && result.stderr.contains("vmm/qemu: untrusted (digest-mismatch)"),
            "\(result.stderr)"
        )
        #expect(try f.state("vmm").state == "untrusted")
        let audited =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "measure", "limit": 100])["records"]?.arrayValue ?? []
        #expect(audited.contains { $0["subject"]?["component"] == "qemu" && $0["subject"]?["load"] == false })
        // Again after a restart of the unit: still refused (the entity stays untrusted this boot).
        #expect(try Self.measureHost(f).status == 1)
        f.daemon.stop()
        #expect(try Self.measureHost(f).status == 3, "ukeyd down: fail closed")
    }

    @Test("the shipped unit runs it once before libvirtd and virtqemud, which require it")
    func unit() throws {
        let unit = try String(
            contentsOfFile: "\(DaemonFixture.root)/systemd/ukey-measure-host.service",
            encoding: .utf8
        )
        for line in [
            "Type=oneshot", "After=ukeyd.socket ukeyd.service", "Before=libvirtd.service virtqemud.service",
            "RequiredBy=libvirtd.service virtqemud.service",
            "ExecStart=/usr/local/bin/ukeyctl measure-host --entity vmm",
        ] {
            #expect(unit.split(separator: "\n").contains { $0 == line }, "\(line)")
        }
    }
}
