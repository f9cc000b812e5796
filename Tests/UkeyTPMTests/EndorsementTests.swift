import Crypto
import Foundation
import Testing
import UkeyTPM
import UkeyTesting

/// The identity Keylime checks, held against tools that are not ukey's: the EK certificate that
/// swtpm_setup wrote as a vendor would, tpm2-tools' MakeCredential and CheckQuote.
@Suite(
    "TPM: the endorsement key, an attestation key under it, credential activation and quotes",
    .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)")
)
struct EndorsementTests {
    static let makeCredential = ExternalTool("tpm2_makecredential")
    static let checkQuote = ExternalTool("tpm2_checkquote")
    static let openssl = ExternalTool("openssl")

    @Test(
        "the EK is the one its NV certificate names; a credential made by tpm2_makecredential for the AK activates; a quote passes tpm2_checkquote, and fails it with another nonce"
    )
    func identity() async throws {
        let swtpm = try SoftwareTPM(manufactured: true)
        defer { swtpm.stop() }
        let directory = swtpm.directory
        let tpm = try TPM(tcti: swtpm.tcti, secret: tpmTestSecret)
        let endorsement = try await tpm.endorsement()
        #expect(endorsement.algorithm == .rsa)
        let certificate = try #require(endorsement.certificate, "swtpm_setup wrote an EK certificate")
        try Data(certificate).write(to: URL(fileURLWithPath: directory.file("ek.der")))
        // The certificate's modulus is the EK's (TPM2B_PUBLIC ends with the 256-byte modulus).
        let modulus = try Self.openssl.run([
            "x509", "-inform", "DER", "-in", directory.file("ek.der"), "-noout", "-modulus",
        ])
        #expect(modulus.status == 0, "\(modulus.stderr)")
        let ours = endorsement.publicArea.suffix(256).map { String(format: "%02X", $0) }.joined()
        #expect(modulus.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "Modulus=\(ours)")

        let key = try await tpm.createAttestationKey(under: endorsement.algorithm)
        try Data(endorsement.publicArea).write(to: URL(fileURLWithPath: directory.file("ek.pub")))
        try Data(key.publicArea).write(to: URL(fileURLWithPath: directory.file("ak.pub")))
        // The AK's name: its name algorithm (SHA-256) then the hash of its TPMT_PUBLIC.
        let name = [0x00, 0x0B] + Array(SHA256.hash(data: key.publicArea.dropFirst(2)))
        let secret = (0..<32).map { UInt8($0 * 7 % 251) }
        try Data(secret).write(to: URL(fileURLWithPath: directory.file("secret")))
        let made = try Self.makeCredential.run([
            "-T", "none", "-u", directory.file("ek.pub"), "-s", directory.file("secret"),
            "-n", name.map { String(format: "%02x", $0) }.joined(), "-o", directory.file("credential"),
        ])
        #expect(made.status == 0, "\(made.stderr)")
        // tpm2-tools' file: a magic and a version (8 bytes), the TPM2B_ID_OBJECT, the TPM2B_ENCRYPTED_SECRET.
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory.file("credential"))))
        let idSize = Int(file[8]) << 8 | Int(file[9])
        let idObject = Array(file[8..<(10 + idSize)])
        let encrypted = Array(file[(10 + idSize)...])
        let recovered = try await tpm.activateCredential(
            key: key,
            algorithm: endorsement.algorithm,
            credential: idObject,
            encryptedSecret: encrypted
        )
        #expect(recovered == secret)
        // The same credential for another key's name does not activate with this one.
        let otherName = [0x00, 0x0B] + Array(SHA256.hash(data: Array("another key".utf8)))
        let other = try Self.makeCredential.run([
            "-T", "none", "-u", directory.file("ek.pub"), "-s", directory.file("secret"),
            "-n", otherName.map { String(format: "%02x", $0) }.joined(), "-o", directory.file("credential2"),
        ])
        #expect(other.status == 0, "\(other.stderr)")
        let file2 = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory.file("credential2"))))
        let idSize2 = Int(file2[8]) << 8 | Int(file2[9])
        await #expect(throws: TPMError.self) {
            try await tpm.activateCredential(
                key: key,
                algorithm: endorsement.algorithm,
                credential: Array(file2[8..<(10 + idSize2)]),
                encryptedSecret: Array(file2[(10 + idSize2)...])
            )
        }

        try await tpm.extend(pcr: 15, sha256: Array(SHA256.hash(data: Array("a measured kernel".utf8))))
        let nonce = Array("keylime-nonce-1234".utf8)
        let quote = try await tpm.quote(
            key: key,
            algorithm: endorsement.algorithm,
            nonce: nonce,
            pcrs: [0, 14, 15],
            bank: 0x000B
        )
        try Data(quote.attest).write(to: URL(fileURLWithPath: directory.file("quote.msg")))
        try Data(quote.signature).write(to: URL(fileURLWithPath: directory.file("quote.sig")))
        try Data(quote.pcrValues).write(to: URL(fileURLWithPath: directory.file("quote.pcrs")))
        func check(_ nonce: [UInt8]) throws -> ExternalTool.Result {
            try Self.checkQuote.run([
                "-u", directory.file("ak.pub"), "-m", directory.file("quote.msg"), "-s", directory.file("quote.sig"),
                "-f", directory.file("quote.pcrs"), "-g", "sha256", "-q",
                nonce.map { String(format: "%02x", $0) }.joined(),
            ])
        }
        let checked = try check(nonce)
        #expect(checked.status == 0, "\(checked.stdout) \(checked.stderr)")
        #expect(try check(Array("another nonce".utf8)).status != 0)
    }
}
