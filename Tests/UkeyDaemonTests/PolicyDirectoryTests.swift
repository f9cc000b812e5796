import Foundation
import Testing
import UkeyTesting
import UkeyVarlink

@Suite("ukeyd policy directory and reload", .serialized)
struct PolicyDirectoryTests {
    @Test("SIGHUP and LoadPolicy take the newest signed policy; a bad one is refused with the reason and the old one stays")
    func lifecycle() throws {
        let policies = try TemporaryDirectory("ukey-policies")
        let f = try DaemonFixture(arguments: ["--policy-dir", policies.path])
        func drop(_ version: Int, sign: Bool = true, badSignature: Bool = false) throws {
            let text = f.policyText.replacingOccurrences(of: "version: 1", with: "version: \(version)")
            let file = policies.file("host-v\(version).yaml")
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            if sign {
                let signature = Data(base64Encoded: try f.sign(badSignature ? text + " " : text))!
                try signature.write(to: URL(fileURLWithPath: file + ".sig"))
            }
        }
        func version() throws -> Int? { try f.daemon.call("io.ukey.Admin.Status")["policyVersion"]?.intValue }
        func lastPolicyRecord() throws -> [String: JSONValue]? {
            try f.daemon.call("io.ukey.Audit.Query", ["type": "policy-load", "limit": 1000])["records"]?.arrayValue?.last?["subject"]?.objectValue
        }
        #expect(try version() == 1)

        // A newer policy with a bad signature, on SIGHUP: refused, recorded with the reason, v1 stays.
        try drop(2, badSignature: true)
        kill(f.daemon.pid, SIGHUP)
        var record: [String: JSONValue]?
        for _ in 0..<100 {
            record = try lastPolicyRecord()
            if record?["outcome"] == "rejected" { break }
            usleep(50_000)
        }
        #expect(record?["outcome"] == "rejected")
        #expect(record?["reason"]?.stringValue?.contains("signature") == true)
        #expect(try version() == 1)
        #expect(f.daemon.log().contains("rejected, the old one stays in force"))

        // Through the API the same refusal comes back in the reply.
        #expect { try f.daemon.call("io.ukey.Admin.LoadPolicy") } throws: { VarlinkError.named("io.ukey.Admin.PolicyRejected")($0) }

        // A good newer one: LoadPolicy without parameters adopts it.
        try drop(3)
        #expect(try f.daemon.call("io.ukey.Admin.LoadPolicy")["version"] == 3)
        #expect(try lastPolicyRecord()?["source"] == "policy-dir")

        // Unsigned v4 refused; then a good v5 is picked at the next start.
        try drop(4, sign: false)
        #expect { try f.daemon.call("io.ukey.Admin.LoadPolicy") } throws: { VarlinkError.named("io.ukey.Admin.PolicyRejected")($0) }
        try FileManager.default.removeItem(atPath: policies.file("host-v4.yaml"))
        try drop(5)
        f.daemon.stop()
        try f.daemon.start()
        #expect(try version() == 5)
        #expect(try lastPolicyRecord()?["outcome"] == "loaded")
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)
    }
}
