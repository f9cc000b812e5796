import Crypto
import Foundation
import Testing
import UkeyCore
import UkeySM
import UkeyTesting
import UkeyToken
import X509

/// A soft token initialised with `algorithm = .sm2`: its CAs, attestation and audit keys are SM2,
/// and what it signs verifies with the same verifiers as a P-256 token's, which take the
/// algorithm from its certificates.
@Suite("soft token with SM2 keys: SM2 hierarchy, SM2 quotes and checkpoints")
struct SM2SoftTokenTests {
    static func token(_ algorithm: TokenAlgorithm, in fixture: TokenFixture) async throws -> SoftToken {
        var configuration = fixture.configuration
        configuration.algorithm = algorithm
        let signer = try IdentityCA.makeRoot(key: fixture.signerKey, commonName: "test policy signer", now: Date())
        return try await SoftToken.initialize(configuration, soPIN: TokenFixture.soPIN, policySigner: signer, bootID: "boot-1")
    }

    static func pem(_ token: SoftToken, _ name: String) async throws -> String {
        try await token.certificate(named: name).pemRepresentation
    }

    @Test("its certificates are SM2 and chain for their purposes; its quote verifies (QuoteVerifier with the root, openssl dgst -sm3 with the ID) and its checkpoint with the audit certificate, also after a reopen")
    func signsWithSM2() async throws {
        let fixture = try TokenFixture()
        let token = try await Self.token(.sm2Default, in: fixture)
        for name in ["root-ca", "token-keys-ca", "user-ca", "attestation", "audit"] {
            guard case .sm2 = try await token.certificate(named: name) else {
                Issue.record("the \(name) certificate is not SM2")
                continue
            }
        }
        let root = try await Self.pem(token, "root-ca")
        let chain = try await Self.pem(token, "attestation") + Self.pem(token, "token-keys-ca")
        try await token.extend(register: 8, digest: .of([1]))
        let signed = try await token.quote(nonce: [1, 2, 3], registers: [8], eventLog: .of([2]))
        #expect(signed.algorithm == "sm2-sm3")
        let keysCA = try await Self.pem(token, "token-keys-ca")
        let verified = try QuoteVerifier.verify(quote: signed.quote, signature: signed.signature, certificatePEM: signed.certificatePEM + keysCA, nonce: [1, 2, 3], rootCAPEM: root)
        #expect(verified.algorithm == "sm2-sm3")
        #expect(throws: TokenError.self) {
            try QuoteVerifier.verify(quote: signed.quote, signature: signed.signature, certificatePEM: chain, nonce: [1, 2, 3], rootCAPEM: root, sm2ID: Array("another-id".utf8))
        }
        // openssl, from the key the quote reply carries.
        let dir = try TemporaryDirectory("sm2-token")
        try dir.write("q.bin", signed.quote)
        try dir.write("q.sig", signed.signature)
        try dir.write("ak.pub", Array(signed.attestationKeyPEM.utf8))
        let openssl = try OpenSSL.run(["dgst", "-sm3", "-verify", dir.file("ak.pub"), "-sigopt", "distid:1234567812345678", "-signature", dir.file("q.sig"), dir.file("q.bin")])
        #expect(openssl.stdout.contains("Verified OK"), "\(openssl.stdout)\(openssl.stderr)")

        let message = Array("checkpoint 7".utf8)
        let checkpoint = try await token.signAuditCheckpoint(message)
        let auditKey = try CertificateBundle.verificationKey(try await Self.pem(token, "audit") + Self.pem(token, "token-keys-ca"), for: .audit, rootCAPEM: root)
        #expect(auditKey.algorithm == "sm2-sm3")
        #expect(auditKey.isValidSignature(checkpoint, for: AuditCheckpoint.signingDomain + message))
        #expect(!auditKey.isValidSignature(checkpoint, for: message), "a checkpoint signature must not verify without its domain tag")

        // Reopened, the same keys sign: the algorithm is the token's, not the configuration's.
        let reopened = try fixture.reopen()
        let again = try await reopened.quote(nonce: [4], registers: [8], eventLog: .of([2]))
        #expect(try QuoteVerifier.verify(quote: again.quote, signature: again.signature, certificatePEM: chain, nonce: [4], rootCAPEM: root).algorithm == "sm2-sm3")
    }

    @Test("a site's own SM2 ID is the one its signatures carry")
    func siteID() async throws {
        let fixture = try TokenFixture()
        let id = Array("ukey-site-7".utf8)
        let token = try await Self.token(.sm2(id: id), in: fixture)
        let root = try await Self.pem(token, "root-ca")
        let chain = try await Self.pem(token, "attestation") + Self.pem(token, "token-keys-ca")
        let signed = try await token.quote(nonce: [9], registers: [0], eventLog: .of([1]))
        #expect(try QuoteVerifier.verify(quote: signed.quote, signature: signed.signature, certificatePEM: chain, nonce: [9], rootCAPEM: root, sm2ID: id).algorithm == "sm2-sm3")
        // With the default ID, the chain itself does not verify.
        let error = #expect(throws: TokenError.self) {
            try QuoteVerifier.verify(quote: signed.quote, signature: signed.signature, certificatePEM: chain, nonce: [9], rootCAPEM: root)
        }
        #expect(error?.reason.contains("signature") == true, "\(String(describing: error))")
    }

    @Test("what an SM2 token cannot do yet is refused with the reason: users' certificates, and CA keys held by a TPM or a card")
    func refusals() async throws {
        let fixture = try TokenFixture()
        let token = try await Self.token(.sm2Default, in: fixture)
        let user = await #expect(throws: TokenError.self) { try await token.addUserReturningCertificate("alice", pin: "alice-p1", roles: ["user"]) }
        #expect(user?.reason.contains("SM2") == true, "\(String(describing: user))")
        #expect(await token.userNames().isEmpty, "a refused user was kept")

        let other = try TokenFixture()
        var configuration = other.configuration
        configuration.algorithm = .sm2Default
        configuration.certificateAuthorityKeys[.rootCA] = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let signer = try IdentityCA.makeRoot(key: other.signerKey, commonName: "test policy signer", now: Date())
        let refused = await #expect(throws: TokenError.self) {
            try await SoftToken.initialize(configuration, soPIN: TokenFixture.soPIN, policySigner: signer, bootID: "boot-1")
        }
        #expect(refused?.reason.contains("P-256") == true, "\(String(describing: refused))")
        #expect(!SoftToken.isInitialized(stateDirectory: configuration.stateDirectory))
    }
}
