import Crypto
import Foundation
import Testing
import UkeyTesting
import UkeyVarlink

/// `io.ukey.Runtime.AllowedFingerprints`: what a guard may allow without asking. It must be
/// exactly the VM's SHA-256 entries, and nothing while an allow takes more than the list (an
/// untrusted VM, audit mode).
@Suite("ukeyd: the allow set it hands a VM's exec guard")
struct AllowedFingerprintsTests {
    static func digest(_ text: String) -> String {
        "sha256:" + Hex.encode(SHA256.hash(data: Array(text.utf8)))
    }

    static let entries = [
        ("/usr/bin/a", digest("a")), ("/usr/bin/b", digest("b")), ("/usr/bin/b", digest("b2")), ("/opt/c", digest("c")),
    ]

    static func fingerprints(_ reply: [String: JSONValue]) -> [ExecFingerprint] {
        guard let text = reply["fingerprints"]?.stringValue, let bytes = Data(base64Encoded: text) else { return [] }
        return bytes.withUnsafeBytes { raw in
            stride(from: 0, to: raw.count, by: ExecFingerprint.size).map {
                ExecFingerprint(bytes: UnsafeRawBufferPointer(rebasing: raw[$0..<$0 + ExecFingerprint.size]))
            }
        }
    }

    @Test(
        "the set is the fingerprints of the VM's entries (a path with two digests gives two), paged; none before the VM is trusted or in audit mode; bad pages refused"
    )
    func allowSet() throws {
        let f = try DaemonFixture(load: false)
        try f.loadPolicy(ExecGuardTests.policy(f.policyText, version: 1, allow: Self.entries))
        let before = try f.daemon.call("io.ukey.Runtime.AllowedFingerprints", ["vm": "vmm"])
        #expect(
            before["available"] == false && Self.fingerprints(before).isEmpty,
            "vmm is not trusted before it is measured"
        )

        try f.bootHost()
        let whole = try f.daemon.call("io.ukey.Runtime.AllowedFingerprints", ["vm": "vmm"])
        #expect(whole["available"] == true)
        #expect(whole["total"] == 4)
        let expected = Set(
            Self.entries.map { ExecFingerprint(vm: "vmm", path: $0.0, sha256: Hex.decode(String($0.1.dropFirst(7)))!) }
        )
        #expect(Set(Self.fingerprints(whole)) == expected)
        #expect(
            !Set(Self.fingerprints(whole)).contains(
                ExecFingerprint(
                    vm: "office",
                    path: "/usr/bin/a",
                    sha256: Hex.decode(String(Self.digest("a").dropFirst(7)))!
                )
            ),
            "a fingerprint names its VM"
        )

        let first = try f.daemon.call("io.ukey.Runtime.AllowedFingerprints", ["vm": "vmm", "limit": 3])
        let rest = try f.daemon.call("io.ukey.Runtime.AllowedFingerprints", ["vm": "vmm", "offset": 3, "limit": 3])
        #expect(Self.fingerprints(first).count == 3 && Self.fingerprints(rest).count == 1)
        #expect(Set(Self.fingerprints(first) + Self.fingerprints(rest)) == expected)
        #expect(
            Self.fingerprints(try f.daemon.call("io.ukey.Runtime.AllowedFingerprints", ["vm": "vmm", "offset": 99]))
                .isEmpty
        )
        #expect(try f.daemon.call("io.ukey.Runtime.AllowedFingerprints", ["vm": "nobody"])["available"] == false)

        for bad: [String: JSONValue] in [
            ["vm": "vmm", "limit": 0], ["vm": "vmm", "limit": 32_769], ["vm": "vmm", "offset": -1], ["vm": 1],
        ] {
            #expect(throws: VarlinkError.self) { try f.daemon.call("io.ukey.Runtime.AllowedFingerprints", bad) }
        }

        _ = try f.daemon.call("io.ukey.Admin.SetMode", ["mode": "audit"])
        let audit = try f.daemon.call("io.ukey.Runtime.AllowedFingerprints", ["vm": "vmm"])
        #expect(audit["available"] == false, "in audit mode every exec is asked about, so it is recorded")
        #expect((audit["generation"]?.intValue ?? 0) > (whole["generation"]?.intValue ?? 0))
        let records = try f.daemon.call("io.ukey.Audit.Query", ["limit": 1000])["records"]?.arrayValue ?? []
        // A read leaves nothing; the pages it refused for their parameters are each an
        // invalid-call record (the first of the interval; the rest counted).
        let mentions = records.filter { $0["subject"]?["method"]?.stringValue?.contains("AllowedFingerprints") == true }
        #expect(mentions.allSatisfy { $0["type"] == "invalid-call" } && !mentions.isEmpty, "\(mentions)")
    }
}
