import UkeyPIV
import Foundation
import Testing
import UkeyTesting

/// Every suite that uses the one virtual card in pcscd: nested here so they run one test at a time.
@Suite(
    "the virtual card in pcscd",
    .serialized,
    .enabled(if: VirtualCardPeer.shouldRun, Comment(rawValue: VirtualCardPeer.skipReason))
)
struct CardPeerTests {}

/// ukey-vcard in pcscd, judged by clients that share no code with it: OpenSC (opensc-tool,
/// pkcs11-tool with opensc-pkcs11.so), yubico-piv-tool and openssl.
extension CardPeerTests {
    @Suite("ukey-vcard: independent PC/SC clients accept it")
    struct VirtualCardInteropTests {
        static let pkcs11Module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
        let opensc = ExternalTool("opensc-tool")
        let pkcs11 = ExternalTool("pkcs11-tool")
        let yubico = ExternalTool("yubico-piv-tool")
        let openssl = ExternalTool("openssl")

        /// Runs a tool, requiring success; returns stdout and stderr together (the tools split their
        /// messages between the two).
        @discardableResult
        func ok(_ tool: ExternalTool, _ arguments: [String], _ comment: String = "") throws -> String {
            let result = try tool.run(arguments)
            #expect(
                result.status == 0,
                "\(tool.name) \(arguments.joined(separator: " ")) \(comment): \(result.stdout) \(result.stderr)"
            )
            return result.stdout + result.stderr
        }

        func piv(_ arguments: [String]) throws -> ExternalTool.Result {
            try yubico.run(["-r", VirtualCardPeer.readers[0]] + arguments)
        }

        @Test(
            "opensc-tool names it a PIV card; yubico-piv-tool generates P-256 keys in 9a and 9c and imports certificates; pkcs11-tool lists them, signs with both (openssl verifies against the certificates) and draws random bytes; all of it survives pulling the card"
        )
        func independentClients() throws {
            try VirtualCardPeer.insertCard(fresh: true)
            let work = try TemporaryDirectory("vcard-interop")
            #expect(try ok(opensc, ["-n"]).contains("Personal Identity Verification Card"))
            let status = try ok(yubico, ["-r", VirtualCardPeer.readers[0], "-a", "status"])
            #expect(status.contains("PIN tries left:\t3") && status.contains("Serial Number:"), "\(status)")
            #expect(
                try ok(yubico, ["-r", VirtualCardPeer.readers[0], "-a", "verify-pin", "-P", "123456"]).contains(
                    "Successfully verified PIN"
                )
            )

            try ok(openssl, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", work.file("ca.key")])
            try ok(
                openssl,
                [
                    "req", "-x509", "-new", "-key", work.file("ca.key"), "-subj", "/CN=interop CA", "-days", "2",
                    "-out", work.file("ca.pem"),
                ]
            )
            for (slot, id) in [("9a", "01"), ("9c", "02")] {
                try ok(
                    yubico,
                    [
                        "-r", VirtualCardPeer.readers[0], "-a", "generate", "-s", slot, "-A", "ECCP256", "-o",
                        work.file("\(slot).pub"),
                    ]
                )
                try ok(
                    openssl,
                    [
                        "x509", "-new", "-force_pubkey", work.file("\(slot).pub"), "-subj", "/CN=slot \(slot)", "-CA",
                        work.file("ca.pem"),
                        "-CAkey", work.file("ca.key"), "-days", "2", "-out", work.file("\(slot).pem"),
                    ]
                )
                try ok(
                    yubico,
                    [
                        "-r", VirtualCardPeer.readers[0], "-a", "import-certificate", "-s", slot, "-i",
                        work.file("\(slot).pem"),
                    ]
                )
                try Data("a quote, say, \(slot)".utf8).write(to: URL(fileURLWithPath: work.file("data")))
                try ok(
                    pkcs11,
                    [
                        "--module", Self.pkcs11Module, "--login", "--pin", "123456", "--sign", "-m", "ECDSA-SHA256",
                        "--id", id,
                        "-i", work.file("data"), "-o", work.file("\(slot).sig"), "--signature-format", "openssl",
                    ]
                )
                try ok(
                    openssl,
                    [
                        "x509", "-in", work.file("\(slot).pem"), "-pubkey", "-noout", "-out",
                        work.file("\(slot).cert.pub"),
                    ]
                )
                let verified = try ok(
                    openssl,
                    [
                        "dgst", "-sha256", "-verify", work.file("\(slot).cert.pub"), "-signature",
                        work.file("\(slot).sig"), work.file("data"),
                    ]
                )
                #expect(verified.contains("Verified OK"), "slot \(slot)")
            }
            let objects = try ok(pkcs11, ["--module", Self.pkcs11Module, "--list-objects"])
            #expect(
                objects.contains("Certificate for PIV Authentication")
                    && objects.contains("Certificate for Digital Signature"),
                "\(objects)"
            )
            try ok(pkcs11, ["--module", Self.pkcs11Module, "--generate-random", "32", "-o", work.file("random")])
            #expect(try Data(contentsOf: URL(fileURLWithPath: work.file("random"))).count == 32)

            // Pulled and re-inserted: keys and certificates are the card's, not the session's.
            try VirtualCardPeer.removeCard()
            try VirtualCardPeer.insertCard()
            let again = try ok(pkcs11, ["--module", Self.pkcs11Module, "--list-objects"])
            #expect(
                again.contains("Certificate for PIV Authentication")
                    && again.contains("Certificate for Digital Signature")
            )
            try ok(
                pkcs11,
                [
                    "--module", Self.pkcs11Module, "--login", "--pin", "123456", "--sign", "-m", "ECDSA-SHA256", "--id",
                    "02",
                    "-i", work.file("data"), "-o", work.file("again.sig"), "--signature-format", "openssl",
                ]
            )
            #expect(
                try ok(
                    openssl,
                    [
                        "dgst", "-sha256", "-verify", work.file("9c.cert.pub"), "-signature", work.file("again.sig"),
                        work.file("data"),
                    ]
                ).contains("Verified OK")
            )
        }

        @Test("yubico-piv-tool changes the PIN; wrong PINs count down and block it; the PUK unblocks it with a new one")
        func pins() throws {
            try VirtualCardPeer.insertCard(fresh: true)
            #expect(
                try ok(yubico, ["-r", VirtualCardPeer.readers[0], "-a", "change-pin", "-P", "123456", "-N", "654321"])
                    .contains("Successfully changed")
            )
            #expect(try piv(["-a", "verify-pin", "-P", "111111"]).stderr.contains("2 tries left"))
            #expect(try piv(["-a", "verify-pin", "-P", "111111"]).stderr.contains("1 tries left"))
            #expect(try piv(["-a", "verify-pin", "-P", "111111"]).stderr.contains("blocked"))
            let blocked = try piv(["-a", "verify-pin", "-P", "654321"])
            #expect(
                blocked.status != 0 && blocked.stderr.contains("blocked"),
                "the right PIN does not open a blocked card"
            )
            #expect(
                try ok(
                    yubico,
                    ["-r", VirtualCardPeer.readers[0], "-a", "unblock-pin", "-P", "12345678", "-N", "246810"]
                ).contains("Successfully unblocked")
            )
            #expect(
                try ok(yubico, ["-r", VirtualCardPeer.readers[0], "-a", "verify-pin", "-P", "246810"]).contains(
                    "Successfully verified"
                )
            )
            #expect(try ok(yubico, ["-r", VirtualCardPeer.readers[0], "-a", "status"]).contains("PIN tries left:\t3"))
        }
    }
}
