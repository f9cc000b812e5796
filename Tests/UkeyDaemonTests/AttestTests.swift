import Crypto
import Foundation
import Testing
import UkeyAPI
import UkeyClient
import UkeyTesting
import UkeyVarlink

/// `io.ukey.Attest` against a real ukeyd on a swtpm that swtpm_setup manufactured (EK
/// certificates from a local CA), checked with openssl and tpm2-tools, not with ukey's code.
@Suite(
    "ukeyd: the TPM's identity for a remote verifier",
    .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)")
)
struct AttestTests {
    static let openssl = ExternalTool("openssl")
    static let makeCredential = ExternalTool("tpm2_makecredential")
    static let checkQuote = ExternalTool("tpm2_checkquote")

    @Test(
        "Identity gives the EK, its certificate (which chains to the manufacturer's CA) and one AK kept across a restart; a credential tpm2_makecredential made for that AK activates; a quote after the host's boot passes tpm2_checkquote"
    )
    func identityActivationQuote() throws {
        let f = try DaemonFixture(backend: .tpm, manufacturedTPM: true)
        let swtpm = try #require(f.daemon.tpm)
        let work = try TemporaryDirectory("ukey-attest")
        try f.bootHost()
        var connection = try f.daemon.connect()
        let identity = try connection.call(Attest.Identity.self, .init())
        #expect(identity.algorithm == "rsa")
        let certificate = try #require(identity.ekCertificate?.bytes)
        try Data(certificate).write(to: URL(fileURLWithPath: work.file("ek.der")))
        let root = swtpm.directory.file("ca/swtpm-localca-rootca-cert.pem")
        // openssl verify reads PEM: converted, then checked up to the manufacturer's root.
        let pem = try Self.openssl.run([
            "x509", "-inform", "DER", "-in", work.file("ek.der"), "-out", work.file("ek.pem"),
        ])
        #expect(pem.status == 0, "\(pem.stderr)")
        let chain = try Self.openssl.run([
            "verify", "-CAfile", root, "-untrusted", swtpm.manufacturerCertificate, work.file("ek.pem"),
        ])
        #expect(chain.status == 0, "\(chain.stdout) \(chain.stderr)")
        let name = [0x00, 0x0B] + Array(SHA256.hash(data: identity.ak.bytes.dropFirst(2)))
        #expect(identity.akName == name.map { String(format: "%02x", $0) }.joined())
        #expect(try connection.call(Attest.Identity.self, .init()).ak == identity.ak)

        try Data(identity.ek.bytes).write(to: URL(fileURLWithPath: work.file("ek.pub")))
        let secret = Array("a verifier's challenge, 32 bytes".utf8)
        try Data(secret).write(to: URL(fileURLWithPath: work.file("secret")))
        let made = try Self.makeCredential.run([
            "-T", "none", "-u", work.file("ek.pub"), "-s", work.file("secret"), "-n", identity.akName,
            "-o", work.file("credential"),
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: work.file("credential"))))
        let idSize = Int(file[8]) << 8 | Int(file[9])
        let activated = try connection.call(
            Attest.ActivateCredential.self,
            .init(credential: Array(file[8..<(10 + idSize)]), encryptedSecret: Array(file[(10 + idSize)...]))
        )
        #expect(activated.secret.bytes == secret)

        // The same key after ukeyd restarts (kept with the token's sealed records).
        f.daemon.stop()
        try f.daemon.start()
        connection = try f.daemon.connect()
        #expect(try connection.call(Attest.Identity.self, .init()).ak == identity.ak)
        try f.bootHost()
        let nonce = Array("keylime nonce 0123456789".utf8)
        let quote = try connection.call(Attest.Quote.self, .init(nonce: nonce, pcrs: [0, 8, 9, 14, 15]))
        try Data(identity.ak.bytes).write(to: URL(fileURLWithPath: work.file("ak.pub")))
        try Data(quote.attest.bytes).write(to: URL(fileURLWithPath: work.file("quote.msg")))
        try Data(quote.signature.bytes).write(to: URL(fileURLWithPath: work.file("quote.sig")))
        try Data(quote.pcrValues.bytes).write(to: URL(fileURLWithPath: work.file("quote.pcrs")))
        let checked = try Self.checkQuote.run([
            "-u", work.file("ak.pub"), "-m", work.file("quote.msg"), "-s", work.file("quote.sig"),
            "-f", work.file("quote.pcrs"), "-g", "sha256", "-q", nonce.map { String(format: "%02x", $0) }.joined(),
        ])
        #expect(checked.status == 0, "\(checked.stdout) \(checked.stderr)")

        // BindKey: PCR 16 reset and extended once, as Keylime's verifier recomputes it.
        let key = Array(SHA256.hash(data: Array("-----BEGIN PUBLIC KEY-----".utf8)))
        _ = try connection.call(Attest.BindKey.self, .init(digest: key.map { String(format: "%02x", $0) }.joined()))
        let bound = try connection.call(Attest.Quote.self, .init(nonce: nonce, pcrs: [16])).pcrValues.bytes
        // tpm2_quote's layout: the 132-byte selection, a count, then TPML_DIGEST (count, size, bytes).
        #expect(Array(bound[142..<174]) == Array(SHA256.hash(data: [UInt8](repeating: 0, count: 32) + key)))

        // A bad request is refused naming its field; a renewed key is another key.
        #expect(throws: APIError.invalidParameter("pcrs")) {
            try connection.call(Attest.Quote.self, .init(nonce: nonce, pcrs: [24]))
        }
        #expect(throws: APIError.invalidParameter("nonce")) {
            try connection.call(Attest.Quote.self, .init(nonce: [], pcrs: [15]))
        }
        #expect(try connection.call(Attest.Identity.self, .init(renew: true)).ak != identity.ak)
    }

    @Test(
        "with [tpm] registers = \"14-15\", a policy whose entities use other PCRs is refused, naming the entity and the PCRs allowed"
    )
    func registersPlacement() throws {
        let config = try TemporaryDirectory("ukey-config")
        try "[tpm]\nregisters = \"14-15\"\n".write(toFile: config.file("ukeyd.toml"), atomically: true, encoding: .utf8)
        #expect {
            try DaemonFixture(arguments: ["--config", config.file("ukeyd.toml")], backend: .tpm)
        } throws: { error in
            let text = "\(error)"
            return text.contains("vmm") && text.contains("uses register 8") && text.contains("usable: 14, 15")
        }
    }

    @Test("on a token whose registers are not on a TPM, Identity is refused as Unavailable, saying why")
    func softTokenHasNoIdentity() throws {
        let f = try DaemonFixture(backend: .soft)
        let connection = try f.daemon.connect()
        #expect {
            try connection.call(Attest.Identity.self, .init())
        } throws: { error in
            guard case .tokenUnavailable(let reason) = error as? APIError else { return false }
            return reason.contains("needs them on a TPM")
        }
    }
}
