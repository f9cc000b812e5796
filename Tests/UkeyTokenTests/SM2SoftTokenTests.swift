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
        return try await SoftToken.initialize(
            configuration,
            soPIN: TokenFixture.soPIN,
            policySigner: signer,
            bootID: "boot-1"
        )
    }

    static func pem(_ token: SoftToken, _ name: String) async throws -> String {
        try await token.certificate(named: name).pemRepresentation
    }

    @Test(
        "its certificates are SM2 and chain for their purposes; its quote verifies (QuoteVerifier with the root, openssl dgst -sm3 with the ID) and its checkpoint with the audit certificate, also after a reopen"
    )
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
        let verified = try QuoteVerifier.verify(
            quote: signed.quote,
            signature: signed.signature,
            certificatePEM: signed.certificatePEM + keysCA,
            nonce: [1, 2, 3],
            rootCAPEM: root
        )
        #expect(verified.algorithm == "sm2-sm3")
        #expect(throws: TokenError.self) {
            try QuoteVerifier.verify(
                quote: signed.quote,
                signature: signed.signature,
                certificatePEM: chain,
                nonce: [1, 2, 3],
                rootCAPEM: root,
                sm2ID: Array("another-id".utf8)
            )
        }
        // openssl, from the key the quote reply carries.
        let dir = try TemporaryDirectory("sm2-token")
        try dir.write("q.bin", signed.quote)
        try dir.write("q.sig", signed.signature)
        try dir.write("ak.pub", Array(signed.attestationKeyPEM.utf8))
        let openssl = try OpenSSL.run([
            "dgst", "-sm3", "-verify", dir.file("ak.pub"), "-sigopt", "distid:1234567812345678", "-signature",
            dir.file("q.sig"), dir.file("q.bin"),
        ])
        #expect(openssl.stdout.contains("Verified OK"), "\(openssl.stdout)\(openssl.stderr)")

        let message = Array("checkpoint 7".utf8)
        let checkpoint = try await token.signAuditCheckpoint(message)
        let auditKey = try CertificateBundle.verificationKey(
            try await Self.pem(token, "audit") + Self.pem(token, "token-keys-ca"),
            for: .audit,
            rootCAPEM: root
        )
        #expect(auditKey.algorithm == "sm2-sm3")
        #expect(auditKey.isValidSignature(checkpoint, for: AuditCheckpoint.signingDomain + message))
        #expect(
            !auditKey.isValidSignature(checkpoint, for: message),
            "a checkpoint signature must not verify without its domain tag"
        )

        // Reopened, the same keys sign: the algorithm is the token's, not the configuration's.
        let reopened = try fixture.reopen()
        let again = try await reopened.quote(nonce: [4], registers: [8], eventLog: .of([2]))
        #expect(
            try QuoteVerifier.verify(
                quote: again.quote,
                signature: again.signature,
                certificatePEM: chain,
                nonce: [4],
                rootCAPEM: root
            ).algorithm == "sm2-sm3"
        )
    }

    @Test("a site's own SM2 ID is the one its signatures carry")
    func siteID() async throws {
        let fixture = try TokenFixture()
        let id = Array("ukey-site-7".utf8)
        let token = try await Self.token(.sm2(id: id), in: fixture)
        let root = try await Self.pem(token, "root-ca")
        let chain = try await Self.pem(token, "attestation") + Self.pem(token, "token-keys-ca")
        let signed = try await token.quote(nonce: [9], registers: [0], eventLog: .of([1]))
        #expect(
            try QuoteVerifier.verify(
                quote: signed.quote,
                signature: signed.signature,
                certificatePEM: chain,
                nonce: [9],
                rootCAPEM: root,
                sm2ID: id
            ).algorithm == "sm2-sm3"
        )
        // With the default ID, the chain itself does not verify.
        let error = #expect(throws: TokenError.self) {
            try QuoteVerifier.verify(
                quote: signed.quote,
                signature: signed.signature,
                certificatePEM: chain,
                nonce: [9],
                rootCAPEM: root
            )
        }
        #expect(error?.reason.contains("signature") == true, "\(String(describing: error))")
    }

    @Test(
        "its users have SM2 keys: the user CA's SM2 certificate chains as a user's only, the PIN opens it, Token.Sign's signature verifies (VerificationKey, openssl dgst -sm3 with the ID), a reissue keeps the key, a reopened token signs with it"
    )
    func users() async throws {
        let fixture = try TokenFixture()
        let token = try await Self.token(.sm2Default, in: fixture)
        let issued = try await token.addUserReturningCertificate("alice", pin: "alice-p1", roles: ["user"])
        guard case .sm2(let certificate) = issued else {
            Issue.record("alice's certificate is not SM2: \(issued)")
            return
        }
        #expect(certificate.subjectCommonName == "alice")
        #expect(try await token.certificate(named: "alice") == issued)
        let root = try await Self.pem(token, "root-ca")
        let bundle = try await issued.pemRepresentation + Self.pem(token, "user-ca")
        let key = try CertificateBundle.verificationKey(bundle, for: .userIdentity, rootCAPEM: root)
        #expect(key.algorithm == "sm2-sm3")
        #expect(throws: TokenError.self) {
            try CertificateBundle.verificationKey(bundle, for: .attestation, rootCAPEM: root)
        }
        #expect(try await token.verifyPIN(user: "alice", pin: "alice-p1") == .accepted)
        #expect(try await token.verifyPIN(user: "alice", pin: "wrong-p1") == .rejected(retriesLeft: 2))

        let digest = SM3.hash(Array("a document".utf8))
        let signature = try await token.sign(asUser: "alice", digest: digest)
        let message = SigningContext.tokenSignMessage(digest: digest)
        #expect(key.isValidSignature(signature, for: message))
        #expect(!key.isValidSignature(signature, for: digest), "a user's signature must not verify without its context")
        let dir = try TemporaryDirectory("sm2-user")
        try dir.write("m.bin", message)
        try dir.write("m.sig", signature)
        try dir.write("alice.pub", Array(key.pemRepresentation.utf8))
        let openssl = try OpenSSL.run([
            "dgst", "-sm3", "-verify", dir.file("alice.pub"), "-sigopt", "distid:1234567812345678", "-signature",
            dir.file("m.sig"), dir.file("m.bin"),
        ])
        #expect(openssl.stdout.contains("Verified OK"), "\(openssl.stdout)\(openssl.stderr)")

        // A reissue certifies the same key again; a CSR (a card's P-256 key) is refused, and so is a
        // card user: the SM2 user CA certifies only the SM2 keys it makes.
        let again = try await token.issueCertificate(user: "alice", csrPEM: nil)
        guard case .sm2(let reissued) = again else {
            Issue.record("the reissued certificate is not SM2")
            return
        }
        #expect(reissued.publicKey.derRepresentation == certificate.publicKey.derRepresentation)
        #expect(reissued.serialNumber != certificate.serialNumber)
        let csrKey = P256.Signing.PrivateKey()
        let csr = try CertificateSigningRequest(
            version: .v1,
            subject: try DistinguishedName { CommonName("alice") },
            privateKey: Certificate.PrivateKey(csrKey),
            attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        let csrRefused = await #expect(throws: TokenError.self) {
            try await token.issueCertificate(user: "alice", csrPEM: try csr.serializeAsPEM().pemString)
        }
        #expect(csrRefused?.reason.contains("SM2") == true, "\(String(describing: csrRefused))")
        let cardRefused = await #expect(throws: TokenError.self) {
            try await token.addCardUser("bob", roles: ["user"], card: 7, publicKey: P256.Signing.PrivateKey().publicKey)
        }
        #expect(cardRefused?.reason.contains("P-256") == true, "\(String(describing: cardRefused))")
        #expect(await token.userNames() == ["alice"], "a refused user was kept")

        let reopened = try fixture.reopen()
        let later = try await reopened.sign(asUser: "alice", digest: digest)
        #expect(key.isValidSignature(later, for: message), "the reopened token signs with another key")
    }

    @Test("CA keys held by a TPM or a card are refused for an SM2 token, with the reason, and nothing is left behind")
    func refusals() async throws {
        let other = try TokenFixture()
        var configuration = other.configuration
        configuration.algorithm = .sm2Default
        configuration.certificateAuthorityKeys[.rootCA] = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let signer = try IdentityCA.makeRoot(key: other.signerKey, commonName: "test policy signer", now: Date())
        let refused = await #expect(throws: TokenError.self) {
            try await SoftToken.initialize(
                configuration,
                soPIN: TokenFixture.soPIN,
                policySigner: signer,
                bootID: "boot-1"
            )
        }
        #expect(refused?.reason.contains("P-256") == true, "\(String(describing: refused))")
        #expect(!SoftToken.isInitialized(stateDirectory: configuration.stateDirectory))
    }
}
