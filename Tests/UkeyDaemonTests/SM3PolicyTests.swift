import Foundation
import Testing
import UkeyCore
import UkeySM
import UkeyTesting
import UkeyVarlink

/// A policy with SM3 digests: measured with SM3, extended into an SM3 register bank, and the
/// event log's SM3 bank replayed by tpm2_eventlog; where there is no SM3 bank, refused at load.
@Suite("ukeyd with SM3 digests and an SM3 register bank")
struct SM3PolicyTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The demo policy with vmm's kernel expected as the SM3 digest of its file.
    static func sm3Policy(_ f: DaemonFixture) throws -> (text: String, digest: [UInt8]) {
        let lookup = try UkeyPolicyLookup(text: f.policyText)
        let file = try #require(lookup.components("vmm").first { $0.0 == "kernel" }?.1)
        let digest = SM3.hash(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        return (
            f.policyText.replacingOccurrences(of: lookup.digest("vmm", "kernel"), with: "sm3:" + hex(digest)), digest
        )
    }

    @Test(
        "soft registers with --banks sha256,sm3: Measure hashes vmm's kernel with SM3, vmm is trusted, and tpm2_eventlog replays the log's SM3 bank to the SM3 chain of vmm's measurements in register 8"
    )
    func sm3Bank() throws {
        let f = try DaemonFixture(arguments: ["--banks", "sha256,sm3"], load: false, backend: .soft)
        let (text, digest) = try Self.sm3Policy(f)
        try f.loadPolicy(text)
        let replies = try f.measureByPath("vmm")
        #expect(replies.last?["verdict"] == "trusted", "\(replies)")
        #expect(try f.state("vmm").state == "trusted")
        // Register 8's SM3 bank, computed here from SM3 itself, not from ukey's register code: the
        // kernel's SM3 digest goes in as it is; a SHA-256 digest goes in as the SM3 of its text.
        let lookup = try UkeyPolicyLookup(text: text)
        var expected = [UInt8](repeating: 0, count: 32)
        for (component, _) in lookup.components("vmm") {
            let measurement = component == "kernel" ? digest : SM3.hash(Array(lookup.digest("vmm", component).utf8))
            expected = SM3.hash(expected + measurement)
        }

        let log = try #require(
            try f.daemon.call("io.ukey.Boot.EventLog")["data"]?.stringValue.flatMap { Data(base64Encoded: $0) }
        )
        let directory = try TemporaryDirectory("sm3-log")
        try directory.write("eventlog.bin", Array(log))
        let result = try ExternalTool("tpm2_eventlog").run([directory.file("eventlog.bin")])
        #expect(result.status == 0, "\(result.stderr)")
        let replayed = TPM2EventLogReplay.registers(result.stdout)
        #expect(replayed["sm3_256"]?[8] == Self.hex(expected), "\(replayed)")
        #expect(replayed["sha256"]?[8] != nil)
    }

    @Test("without an SM3 bank the policy is refused at load, saying how to get one; the old policy stays")
    func refusedWithoutBank() throws {
        let f = try DaemonFixture(backend: .soft)
        var (text, _) = try Self.sm3Policy(f)
        text = text.replacingOccurrences(of: "version: 1\n", with: "version: 2\n")
        #expect { try f.loadPolicy(text) } throws: { error in
            let reason = (error as? VarlinkError)?.parameters["reason"]?.stringValue ?? ""
            return reason.contains("sm3 register bank") && reason.contains("[token] banks")
        }
        #expect(try f.daemon.call("io.ukey.Admin.Status")["policyVersion"] == 1)
    }

    @Test(
        "on swtpm, which has no SM3 PCR bank, the policy is refused at load with the TPM's own list of banks",
        .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)")
    )
    func refusedOnSwtpm() throws {
        let f = try DaemonFixture(load: false, backend: .tpm)
        let (text, _) = try Self.sm3Policy(f)
        #expect { try f.loadPolicy(text) } throws: { error in
            let reason = (error as? VarlinkError)?.parameters["reason"]?.stringValue ?? ""
            return reason.contains("this TPM has no sm3 PCR bank (TPM2_GetCapability lists")
                && reason.contains("sha256") && reason.contains("libtpms is built without SM3")
        }
    }
}
