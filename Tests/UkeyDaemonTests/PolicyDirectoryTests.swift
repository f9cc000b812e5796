import Foundation
import Testing
import UkeyCore
import UkeyTesting
import UkeyVarlink

@Suite("ukeyd policy directory and reload", .serialized)
struct PolicyDirectoryTests {
    @Test(
        "SIGHUP and LoadPolicy take the newest signed policy; a bad one is refused with the reason and the old one stays"
    )
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
            try f.daemon.call("io.ukey.Audit.Query", ["type": "policy-load", "limit": 1000])["records"]?.arrayValue?
                .last?["subject"]?.objectValue
        }
        #expect(try version() == 1)

        // A newer policy with a bad signature, on SIGHUP: refused, recorded with the reason, v1 stays.
        try drop(2, badSignature: true)
        kill(f.daemon.pid, SIGHUP)
        var record: [String: JSONValue]?
        for _ in 0..<400 {
            record = try lastPolicyRecord()
            if record?["outcome"] == "rejected" { break }
            usleep(50_000)
        }
        #expect(record?["outcome"] == "rejected")
        #expect(record?["reason"]?.stringValue?.contains("signature") == true)
        #expect(try version() == 1)
        #expect(f.daemon.log().contains("rejected, the old one stays in force"))

        // Through the API the same refusal comes back in the reply.
        #expect { try f.daemon.call("io.ukey.Admin.LoadPolicy") } throws: {
            VarlinkError.named("io.ukey.Admin.PolicyRejected")($0)
        }

        // A good newer one: LoadPolicy without parameters adopts it.
        try drop(3)
        #expect(try f.daemon.call("io.ukey.Admin.LoadPolicy")["version"] == 3)
        #expect(try lastPolicyRecord()?["source"] == "policy-dir")

        // Unsigned v4 refused; then a good v5 is picked at the next start.
        try drop(4, sign: false)
        #expect { try f.daemon.call("io.ukey.Admin.LoadPolicy") } throws: {
            VarlinkError.named("io.ukey.Admin.PolicyRejected")($0)
        }
        try FileManager.default.removeItem(atPath: policies.file("host-v4.yaml"))
        try drop(5)
        f.daemon.stop()
        try f.daemon.start()
        #expect(try version() == 5)
        #expect(try lastPolicyRecord()?["outcome"] == "loaded")
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)
    }
}

@Suite("ukeyd allow-lists", .serialized)
struct AllowListDaemonTests {
    @Test(
        "a policy's allow-list (sha256sum format, pinned by digest) feeds CheckExec, survives a restart without the original, and a list that does not match its digest is refused"
    )
    func allowList() throws {
        let policies = try TemporaryDirectory("ukey-policies")
        let f = try DaemonFixture(arguments: ["--policy-dir", policies.path])
        let tool = String(repeating: "7", count: 64)
        var list = "# office tools\n"
        for n in 0..<2000 { list += String(format: "%064x", n) + "  /opt/tools/tool-\(n)\n" }
        list += tool + "  /usr/bin/special tool\n"
        try list.write(toFile: policies.file("office.list"), atomically: true, encoding: .utf8)
        func policy(_ version: Int, listDigest: String) -> String {
            f.policyText
                .replacingOccurrences(of: "version: 1", with: "version: \(version)")
                .replacingOccurrences(
                    of: "  - vm: office\n    default: deny\n",
                    with:
                        "  - vm: office\n    default: deny\n    allow-list:\n      file: office.list\n      digest: \(listDigest)\n"
                )
        }
        let digest = Digest.of(Array(list.utf8)).description
        let text = policy(2, listDigest: digest)
        try text.write(toFile: policies.file("host.yaml"), atomically: true, encoding: .utf8)
        try Data(base64Encoded: try f.sign(text))!.write(to: URL(fileURLWithPath: policies.file("host.yaml.sig")))
        #expect(try f.daemon.call("io.ukey.Admin.LoadPolicy")["version"] == 2)

        try f.bootHost()
        let alice = try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]!
            .stringValue!
        try f.measureByPath("office", session: alice)
        func check(_ path: String, _ digest: String) throws -> String? {
            try f.daemon.call(
                "io.ukey.Runtime.CheckExec",
                ["vm": "office", "path": .string(path), "digest": .string("sha256:" + digest)]
            )["decision"]?.stringValue
        }
        #expect(try check("/usr/bin/special tool", tool) == "allow")
        #expect(try check("/opt/tools/tool-1999", String(format: "%064x", 1999)) == "allow")
        #expect(try check("/opt/tools/tool-1999", tool) == "deny")

        // The original goes away; the daemon restarts from its own copy.
        try FileManager.default.removeItem(atPath: policies.file("office.list"))
        f.daemon.stop()
        try f.daemon.start()
        #expect(try f.daemon.call("io.ukey.Admin.Status")["policyVersion"] == 2)

        // A list edited after signing: refused, and the old policy stays.
        try (list + tool + "  /usr/bin/nc\n").write(
            toFile: policies.file("office.list"),
            atomically: true,
            encoding: .utf8
        )
        let v3 = policy(3, listDigest: digest)
        try v3.write(toFile: policies.file("host.yaml"), atomically: true, encoding: .utf8)
        try Data(base64Encoded: try f.sign(v3))!.write(to: URL(fileURLWithPath: policies.file("host.yaml.sig")))
        #expect {
            try f.daemon.call("io.ukey.Admin.LoadPolicy")
        } throws: { error in
            (error as? VarlinkError)?.parameters["reason"]?.stringValue?.contains("policy pins") == true
        }
        #expect(try f.daemon.call("io.ukey.Admin.Status")["policyVersion"] == 2)
    }
}
