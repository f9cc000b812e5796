import Crypto
import Foundation
import Testing
import UkeyCore
import UkeyToken
import X509

/// A TPM's attestation key is restricted, yet it signs a digest of any bytes that do not start
/// with TPM_GENERATED_VALUE (TPM2_Hash gives the ticket): a "ukey-v1" quote made of such bytes.
/// Its certificate names the one format it vouches for, and verifiers hold it to that.
@Suite("quote formats: a TPM's attestation certificate vouches for TPM2 quotes only")
struct QuoteFormatTests {
    /// A root, its token-keys sub-CA, and an attestation leaf for `key`, as a bundle and the root.
    static func hierarchy(
        for key: P256.Signing.PrivateKey,
        tpm2QuotesOnly: Bool
    ) async throws -> (bundle: String, root: String) {
        let now = Date()
        let rootKey = P256.Signing.PrivateKey()
        let subKey = P256.Signing.PrivateKey()
        let root = try IdentityCA.makeRoot(key: rootKey, commonName: "test root", now: now)
        let sub = try await IdentityCA.makeSubordinate(
            .tokenKeys,
            commonName: "test token keys",
            subjectKey: Certificate.PublicKey(subKey.publicKey),
            rootKey: Certificate.PrivateKey(rootKey),
            rootCertificate: root,
            now: now
        )
        let leaf = try await IdentityCA.issue(
            commonName: "test attestation",
            subjectKey: Certificate.PublicKey(key.publicKey),
            purpose: .attestation,
            caKey: Certificate.PrivateKey(subKey),
            caCertificate: sub,
            now: now,
            tpm2QuotesOnly: tpm2QuotesOnly
        )
        return (try IdentityCA.pem(leaf) + IdentityCA.pem(sub), try IdentityCA.pem(root))
    }

    static func ukeyQuote(_ key: P256.Signing.PrivateKey, nonce: [UInt8]) throws -> (bytes: [UInt8], signature: [UInt8])
    {
        let quote = UkeyQuote(
            nonce: nonce,
            bootID: "boot",
            bootCounter: 1,
            time: 1,
            bank: .sha256,
            registers: [(8, [UInt8](repeating: 0, count: 32))],
            eventLog: .of([])
        )
        let bytes = quote.encoded()
        return (bytes, Array(try key.signature(for: SHA256.hash(data: bytes)).derRepresentation))
    }

    @Test(
        "a ukey-v1 quote signed by a key whose certificate names TPM2 quotes is refused, naming why; the same quote under a ukey-v1 attestation certificate verifies; a TPM2 quote under a certificate without the TPM mark is refused"
    )
    func formatIsTheCertificates() async throws {
        let key = P256.Signing.PrivateKey()
        let nonce: [UInt8] = [1, 2, 3, 4]
        let (bytes, signature) = try Self.ukeyQuote(key, nonce: nonce)
        let tpm = try await Self.hierarchy(for: key, tpm2QuotesOnly: true)
        #expect {
            try QuoteVerifier.verify(
                quote: bytes,
                signature: signature,
                certificatePEM: tpm.bundle,
                nonce: nonce,
                rootCAPEM: tpm.root
            )
        } throws: {
            "\($0)".contains("vouches only for TPM2 quotes")
        }
        let soft = try await Self.hierarchy(for: key, tpm2QuotesOnly: false)
        #expect(throws: Never.self) {
            try QuoteVerifier.verify(
                quote: bytes,
                signature: signature,
                certificatePEM: soft.bundle,
                nonce: nonce,
                rootCAPEM: soft.root
            )
        }
        #expect {
            try QuoteVerifier.verifyTPM2(
                attest: bytes,
                signature: signature,
                certificatePEM: soft.bundle,
                nonce: nonce,
                rootCAPEM: soft.root
            )
        } throws: {
            "\($0)".contains("vouches for no TPM2 quote")
        }
    }
}
