import Crypto
import Foundation
import Testing
import UkeyCore
import UkeyTesting
import UkeyToken
import UkeyVarlink
import X509

/// keys/demo/ holds a policy signer whose private key is in the repository. A token that trusts
/// it trusts anyone, so ukeyd refuses it unless told this is a demo or a test.
@Suite("ukeyd refuses the demo policy signer without --allow-demo-keys")
struct DemoKeyTests {
    @Test(
        "Initialize with the demo signer is refused, naming the flag; a token that enrolled it does not start without the flag; another signer is unaffected"
    )
    func refusedWithoutFlag() throws {
        let plain = try TestDaemon()
        let demo = try DaemonFixture.demoSignerCertificatePEM()
        #expect {
            try plain.call(
                "io.ukey.Admin.Initialize",
                ["soPin": .string(DaemonFixture.soPIN), "policySigner": .string(demo)]
            )
        } throws: { error in
            guard let error = error as? VarlinkError else { return false }
            return error.name == "io.ukey.Admin.InvalidArgument"
                && error.parameters["reason"]?.stringValue?.contains("demo key") == true
                && error.parameters["reason"]?.stringValue?.contains("--allow-demo-keys") == true
        }
        #expect(
            try plain.call("io.ukey.Admin.Status")["initialized"] == false,
            "the refused Initialize created nothing"
        )
        // Another signer is taken as before.
        let other = try IdentityCA.pem(
            try IdentityCA.makeRoot(key: P256.Signing.PrivateKey(), commonName: "site policy signer", now: Date())
        )
        try plain.call(
            "io.ukey.Admin.Initialize",
            ["soPin": .string(DaemonFixture.soPIN), "policySigner": .string(other)]
        )
        #expect(try plain.call("io.ukey.Admin.Status")["initialized"] == true)

        // Provisioned with the flag (as make demo does), then restarted without it: no start.
        let f = try DaemonFixture()
        f.daemon.stop()
        f.daemon.extraArguments.removeAll { $0 == "--allow-demo-keys" }
        #expect(throws: TestDaemonError.self) { try f.daemon.start() }
        #expect(f.daemon.log().contains("the policy signer is ukey's demo key"))
        // With the flag again it starts on the same state, nothing lost.
        f.daemon.extraArguments.append("--allow-demo-keys")
        try f.daemon.start()
        #expect(try f.daemon.call("io.ukey.Admin.Status")["policyVersion"] != .null)
    }

    @Test("the files in keys/demo/ are the key ukeyd knows as the demo key, and say they are for tests only")
    func filesMatchTheFingerprint() throws {
        let key = try DaemonFixture.demoSigner()
        let certificate = try Certificate(
            pemEncoded: PEMText.firstBlock(of: try DaemonFixture.demoSignerCertificatePEM())
        )
        #expect(P256.Signing.PublicKey(certificate.publicKey)?.x963Representation == key.publicKey.x963Representation)
        let fingerprint = Hex.encode(Array(SHA256.hash(data: key.publicKey.x963Representation)))
        let source = try String(
            contentsOfFile: DaemonFixture.root + "/Sources/UkeyDaemon/Services/Admin/DemoKeys.swift",
            encoding: .utf8
        )
        #expect(source.contains("\"\(fingerprint)\""), "DemoKeys.policySignerFingerprint is not the key in keys/demo/")
        #expect("\(certificate.subject)".contains("TEST ONLY"))
        // Both files open with a header that says so, before the PEM block (RFC 7468 lets text
        // precede it; openssl and ukey read past it).
        for file in [".key.pem", ".pem"] {
            let text = try String(contentsOfFile: DaemonFixture.demoSignerPath + file, encoding: .utf8)
            #expect(text.hasPrefix("TEST ONLY"), "\(file) lacks its test-only header")
        }
    }
}
