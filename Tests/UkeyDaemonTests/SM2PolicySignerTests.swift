import Foundation
import Testing
import UkeySM
import UkeyTesting
import UkeyVarlink

/// A site that signs its policies with SM2: the signer enrolled at Initialize is an SM2
/// certificate, and a policy's signature is SM2 with SM3 over its bytes, the ID explicit.
@Suite("ukeyd: policies signed with SM2")
struct SM2PolicySignerTests {
    static func policy(version: Int) throws -> String {
        try String(contentsOfFile: "\(DaemonFixture.root)/policies/demo.yaml", encoding: .utf8)
            .replacingOccurrences(of: "version: 1\n", with: "version: \(version)\n")
    }

    static func load(_ daemon: TestDaemon, _ text: String, _ signature: [UInt8]) throws -> [String: JSONValue] {
        try daemon.call(
            "io.ukey.Admin.LoadPolicy",
            ["policy": .string(text), "signature": .string(Data(signature).base64EncodedString())]
        )
    }

    @Test(
        "an SM2 signer enrolled: policies signed by ukey, by ukeyctl and by openssl dgst -sm3 -sigopt distid load; one signed over OpenSSL's implicit empty ID, or with ECDSA, is refused with the reason; the policy still verifies after a restart"
    )
    func sm2Signer() throws {
        let directory = try TemporaryDirectory("sm2-signer")
        let keygen = try ExternalTool.run(
            PackagePaths.builtProduct("ukeyctl"),
            ["keygen", "--algorithm", "sm2", "--out", directory.file("signer")]
        )
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let certificatePEM = try String(contentsOfFile: directory.file("signer.pem"), encoding: .utf8)
        let key = try SM2PrivateKey(
            pemRepresentation: String(contentsOfFile: directory.file("signer.key.pem"), encoding: .utf8)
        )
        #expect(try SM2Certificate(pemRepresentation: certificatePEM).isSigned(by: try key.publicKey))

        let daemon = try TestDaemon()
        defer { daemon.stop() }
        _ = try daemon.call(
            "io.ukey.Admin.Initialize",
            ["soPin": .string(DaemonFixture.soPIN), "policySigner": .string(certificatePEM)]
        )
        #expect(
            try daemon.call("io.ukey.Token.Certificate", ["name": "policy-signer"])["pem"]?.stringValue
                == certificatePEM
        )

        let first = try Self.policy(version: 1)
        #expect(try Self.load(daemon, first, try key.signature(for: Array(first.utf8)))["version"] == 1)

        // ukeyctl policy sign, with the SM2 key.
        let second = try Self.policy(version: 2)
        try second.write(toFile: directory.file("p2.yaml"), atomically: true, encoding: .utf8)
        let signed = try ExternalTool.run(
            PackagePaths.builtProduct("ukeyctl"),
            ["policy", "sign", directory.file("p2.yaml"), "--key", directory.file("signer.key.pem")]
        )
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(
            try Self.load(
                daemon,
                second,
                Array(try Data(contentsOf: URL(fileURLWithPath: directory.file("p2.yaml.sig"))))
            )["version"] == 2
        )

        // openssl, with the ID given: loads. Without it (an empty ID, OpenSSL 3.0's default): refused.
        let third = try Self.policy(version: 3)
        try third.write(toFile: directory.file("p3.yaml"), atomically: true, encoding: .utf8)
        let implicit = try ExternalTool("openssl").run([
            "dgst", "-sm3", "-sign", directory.file("signer.key.pem"), "-out", directory.file("implicit.sig"),
            directory.file("p3.yaml"),
        ])
        #expect(implicit.status == 0)
        let refused = #expect(throws: VarlinkError.self) {
            try Self.load(
                daemon,
                third,
                Array(try Data(contentsOf: URL(fileURLWithPath: directory.file("implicit.sig"))))
            )
        }
        #expect(
            refused?.parameters["reason"]?.stringValue?.contains("distid:1234567812345678") == true,
            "\(String(describing: refused))"
        )
        let explicit = try ExternalTool("openssl").run([
            "dgst", "-sm3", "-sign", directory.file("signer.key.pem"), "-sigopt", "distid:1234567812345678", "-out",
            directory.file("explicit.sig"), directory.file("p3.yaml"),
        ])
        #expect(explicit.status == 0)
        #expect(
            try Self.load(
                daemon,
                third,
                Array(try Data(contentsOf: URL(fileURLWithPath: directory.file("explicit.sig"))))
            )["version"] == 3
        )

        // An ECDSA signature (the demo signer's) is not the enrolled signer's.
        let fourth = try Self.policy(version: 4)
        let ecdsa = try DaemonFixture.demoSigner().signature(for: Array(fourth.utf8)).derRepresentation
        #expect(throws: VarlinkError.self) { try Self.load(daemon, fourth, Array(ecdsa)) }

        // At start the stored policy is verified again, with the SM2 signer.
        daemon.stop()
        try daemon.start()
        #expect(try daemon.call("io.ukey.Admin.Status")["policyVersion"] == 3)
    }

    @Test("Initialize refuses what is neither a P-256 nor an SM2 certificate, saying what it takes")
    func badSigner() throws {
        let daemon = try TestDaemon()
        defer { daemon.stop() }
        for junk in ["not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"] {
            let error = #expect(throws: VarlinkError.self) {
                try daemon.call(
                    "io.ukey.Admin.Initialize",
                    ["soPin": .string(DaemonFixture.soPIN), "policySigner": .string(junk)]
                )
            }
            #expect(
                error?.parameters["reason"]?.stringValue?.contains("P-256, or SM2") == true,
                "\(String(describing: error))"
            )
        }
    }
}
