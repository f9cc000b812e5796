import Crypto
import CryptoExtras
import Foundation
import Testing
import UkeyCodec
import UkeyTesting
import UkeyToken
import X509

/// The vTPM sub-CA: it certifies a vTPM's EK (as swtpm_setup hands it over) in TCG's profile,
/// under its own policy, naming the VM; openssl is the judge, and another CA's certificate for
/// the same key is refused.
@Suite(
    "vTPM CA: EK certificates under the vTPM policy, naming the VM (checked by openssl); swtpm_setup's key text parsed strictly"
)
struct VTPMCertificateTests {
    static let policyOID = CertificatePolicy.vtpm.oid

    static func rsaModulus() throws -> String {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        // The DER of RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }; n follows its 0x00 pad.
        let der = Array(key.publicKey.pkcs1DERRepresentation)
        let start = der.firstIndex(of: 0x02)! + 4  // tag, 0x82 LL LL
        var modulus = Array(der[start..<(start + 257)])
        if modulus.first == 0 { modulus.removeFirst() }
        return Hex.encode(Array(modulus.prefix(256)))
    }

    static func request(_ vm: String, _ key: VTPMEndorsementKey) -> VTPMCertificateRequest {
        VTPMCertificateRequest(
            kind: .endorsement,
            vm: vm,
            endorsementKey: key,
            tpmManufacturer: "id:00001014",
            tpmModel: "swtpm",
            tpmVersion: "id:20191023"
        )
    }

    @Test(
        "an EK certificate chains to the root only under the vTPM policy, names its VM, and is refused under another token's root"
    )
    func issuedAndVerified() async throws {
        let fixture = try TokenFixture()
        let token = try await fixture.initialize()
        let key = try VTPMEndorsementKey(parsing: try Self.rsaModulus())
        let certificate = try await token.issueVTPMCertificate(Self.request("office", key))
        #expect(VTPMCertificates.vm(namedBy: certificate) == "office")

        let root = try await token.certificate(named: TokenKey.rootCA.rawValue)
        let authority = try await token.certificate(named: TokenKey.vtpmCA.rawValue)
        guard case .x509(let rootCertificate) = root, case .x509(let caCertificate) = authority else {
            Issue.record("a P-256 token's certificates are X.509")
            return
        }
        #expect(
            VTPMCertificates.problem(
                with: certificate,
                vm: "office",
                intermediates: [caCertificate],
                root: rootCertificate,
                at: Date()
            ) == nil
        )
        #expect(
            VTPMCertificates.problem(
                with: certificate,
                vm: "payroll",
                intermediates: [caCertificate],
                root: rootCertificate,
                at: Date()
            ) != nil,
            "a certificate for office's vTPM passed as payroll's"
        )

        let dir = fixture.parent
        try dir.write("root.pem", Array(try IdentityCA.pem(rootCertificate).utf8))
        try dir.write("ca.pem", Array(try IdentityCA.pem(caCertificate).utf8))
        try dir.write("ek.pem", Array(try IdentityCA.pem(certificate).utf8))
        let verify = { (root: String, chain: String, policy: String) throws -> Int32 in
            try OpenSSL.run([
                "verify", "-CAfile", dir.file(root), "-untrusted", dir.file(chain), "-policy", policy,
                "-explicit_policy", "-x509_strict", dir.file("ek.pem"),
            ]).status
        }
        #expect(try verify("root.pem", "ca.pem", Self.policyOID) == 0)
        #expect(
            try verify("root.pem", "ca.pem", CertificatePolicy.users.oid) != 0,
            "an EK certificate passed as a user's"
        )
        let text = try OpenSSL.run(["x509", "-in", dir.file("ek.pem"), "-noout", "-text"]).stdout
        #expect(text.contains("2.23.133.8.1") && text.contains("Key Encipherment") && text.contains("ukey vm office"))
        #expect(text.contains("2.23.133.2.1=id:00001014"), "\(text)")

        // Another token's vTPM CA certifying the same EK: refused under this token's root.
        let other = try TokenFixture()
        let otherToken = try await other.initialize()
        let foreign = try await otherToken.issueVTPMCertificate(Self.request("office", key))
        guard case .x509(let otherCA) = try await otherToken.certificate(named: TokenKey.vtpmCA.rawValue) else {
            return
        }
        #expect(
            VTPMCertificates.problem(
                with: foreign,
                vm: "office",
                intermediates: [caCertificate, otherCA],
                root: rootCertificate,
                at: Date()
            ) != nil
        )
        try dir.write("ek.pem", Array(try IdentityCA.pem(foreign).utf8))
        try dir.write("other-ca.pem", Array(try IdentityCA.pem(otherCA).utf8))
        #expect(try verify("root.pem", "other-ca.pem", Self.policyOID) != 0, "another token's EK certificate passed")
    }

    @Test("swtpm_setup's key text: an RSA modulus or an EC point, anything else refused with a reason")
    func keyText() throws {
        #expect(throws: Never.self) { try VTPMEndorsementKey(parsing: try Self.rsaModulus()).publicKey() }
        let point = P256.Signing.PrivateKey().publicKey.x963Representation.dropFirst()
        let x = Hex.encode(Array(point.prefix(32)))
        let y = Hex.encode(Array(point.suffix(32)))
        #expect(throws: Never.self) { try VTPMEndorsementKey(parsing: "x=\(x),y=\(y),id=secp256r1").publicKey() }
        for bad in [
            "", "zz", String(repeating: "ab", count: 255), String(repeating: "ff", count: 600),
            String(repeating: "7f", count: 256), "x=\(x),y=\(y),id=brainpoolP256r1", "x=\(x),x=\(y)", "x=\(x)",
            "x=\(x),y=\(y),z=1", "x=\(x),y=\(String(repeating: "00", count: 32))",
        ] {
            #expect(throws: TokenError.self, "accepted '\(bad.prefix(40))'") {
                try VTPMEndorsementKey(parsing: bad).publicKey()
            }
        }
        var request = Self.request("office", try VTPMEndorsementKey(parsing: try Self.rsaModulus()))
        request.tpmModel = "sw tpm"
        #expect(request.problem != nil)
    }

    @Test("an SM2 token runs no vTPM: refused, saying why")
    func sm2Refused() async throws {
        let fixture = try TokenFixture()
        let token = try await SM2SoftTokenTests.token(.sm2Default, in: fixture)
        await #expect(throws: TokenError.self) {
            _ = try await token.issueVTPMCertificate(
                Self.request("office", try VTPMEndorsementKey(parsing: try Self.rsaModulus()))
            )
        }
    }
}
