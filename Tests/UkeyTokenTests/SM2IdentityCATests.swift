import Foundation
import Testing
import UkeySM
import UkeyTesting
import UkeyToken

/// The certificate hierarchy of an SM2 token: the same shape and statements as the X.509 one,
/// checked by our code (OpenSSL 3.0's `verify` cannot check SM2 signatures made with an ID).
@Suite("SM2 identity CA: root, two sub-CAs and leaves that each chain for their own purpose only")
struct SM2IdentityCATests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let id = SM2.defaultID

    struct Hierarchy {
        let root: SM2Certificate
        let tokenKeysCA: SM2Certificate
        let userCA: SM2Certificate
        let tokenKeysKey: SM2PrivateKey
        let userKey: SM2PrivateKey
        let attestation: SM2Certificate
        let audit: SM2Certificate
        let user: SM2Certificate

        init() throws {
            let rootKey = try SM2PrivateKey()
            root = try SM2IdentityCA.makeRoot(
                key: rootKey,
                commonName: "ukey root CA test",
                now: SM2IdentityCATests.now,
                id: SM2IdentityCATests.id
            )
            tokenKeysKey = try SM2PrivateKey()
            userKey = try SM2PrivateKey()
            tokenKeysCA = try SM2IdentityCA.makeSubordinate(
                .tokenKeys,
                commonName: "ukey token-keys CA test",
                subjectKey: tokenKeysKey.publicKey,
                rootKey: rootKey,
                rootCertificate: root,
                now: SM2IdentityCATests.now,
                id: SM2IdentityCATests.id
            )
            userCA = try SM2IdentityCA.makeSubordinate(
                .users,
                commonName: "ukey users CA test",
                subjectKey: userKey.publicKey,
                rootKey: rootKey,
                rootCertificate: root,
                now: SM2IdentityCATests.now,
                id: SM2IdentityCATests.id
            )
            func leaf(
                _ name: String,
                _ purpose: KeyPurpose,
                _ caKey: SM2PrivateKey,
                _ ca: SM2Certificate
            ) throws -> SM2Certificate {
                try SM2IdentityCA.issue(
                    commonName: name,
                    subjectKey: try SM2PrivateKey().publicKey,
                    purpose: purpose,
                    caKey: caKey,
                    caCertificate: ca,
                    now: SM2IdentityCATests.now,
                    id: SM2IdentityCATests.id
                )
            }
            attestation = try leaf("ukey attestation test", .attestation, tokenKeysKey, tokenKeysCA)
            audit = try leaf("ukey audit test", .audit, tokenKeysKey, tokenKeysCA)
            user = try leaf("alice", .userIdentity, userKey, userCA)
        }

        var chain: [SM2Certificate] { [tokenKeysCA, userCA] }
    }

    @Test(
        "each leaf chains to the root for its purpose; for any other purpose, with another ID, out of its validity or without its sub-CA it does not"
    )
    func chains() throws {
        let h = try Hierarchy()
        let now = Self.now + 3600
        #expect(h.root.isCertificateAuthority && h.root.maxPathLength == 1)
        #expect(
            h.tokenKeysCA.maxPathLength == 0 && SM2IdentityCA.states(h.tokenKeysCA, policy: .tokenKeys)
                && !SM2IdentityCA.states(h.tokenKeysCA, policy: .users)
        )
        for (leaf, purpose) in [(h.attestation, KeyPurpose.attestation), (h.audit, .audit), (h.user, .userIdentity)] {
            #expect(
                SM2IdentityCA.problem(
                    with: leaf,
                    as: purpose,
                    intermediates: h.chain,
                    root: h.root,
                    at: now,
                    id: Self.id
                ) == nil,
                "\(purpose)"
            )
            for other in KeyPurpose.allCases where other != purpose {
                let problem = SM2IdentityCA.problem(
                    with: leaf,
                    as: other,
                    intermediates: h.chain,
                    root: h.root,
                    at: now,
                    id: Self.id
                )
                #expect(
                    problem?.contains("extended key usage") == true,
                    "\(purpose) taken for \(other): \(problem ?? "accepted")"
                )
            }
        }
        let otherID = Array("another-id".utf8)
        #expect(
            SM2IdentityCA.problem(
                with: h.attestation,
                as: .attestation,
                intermediates: h.chain,
                root: h.root,
                at: now,
                id: otherID
            )?.contains("signature") == true
        )
        #expect(
            SM2IdentityCA.problem(
                with: h.attestation,
                as: .attestation,
                intermediates: h.chain,
                root: h.root,
                at: now + 30 * 365 * 86_400,
                id: Self.id
            )?.contains("not valid") == true
        )
        #expect(
            SM2IdentityCA.problem(
                with: h.attestation,
                as: .attestation,
                intermediates: [h.userCA],
                root: h.root,
                at: now,
                id: Self.id
            )?.contains("needs its issuer") == true
        )
        // Another token's root does not take this token's chain.
        let stranger = try SM2IdentityCA.makeRoot(
            key: try SM2PrivateKey(),
            commonName: "ukey root CA test",
            now: Self.now,
            id: Self.id
        )
        #expect(
            SM2IdentityCA.problem(
                with: h.attestation,
                as: .attestation,
                intermediates: h.chain,
                root: stranger,
                at: now,
                id: Self.id
            )?.contains("sub-CA") == true
        )
    }

    @Test(
        "a sub-CA issues only its own kind, and a forged leaf that names the attestation purpose but comes from the users sub-CA is refused"
    )
    func subCAsIssueTheirOwnKind() throws {
        let h = try Hierarchy()
        let refused = #expect(throws: TokenError.self) {
            try SM2IdentityCA.issue(
                commonName: "mallory",
                subjectKey: try SM2PrivateKey().publicKey,
                purpose: .attestation,
                caKey: h.userKey,
                caCertificate: h.userCA,
                now: Self.now,
                id: Self.id
            )
        }
        #expect(refused?.description.contains("does not issue") == true)
        #expect(throws: TokenError.self) {
            try SM2IdentityCA.issue(
                commonName: "wrong key",
                subjectKey: try SM2PrivateKey().publicKey,
                purpose: .attestation,
                caKey: h.userKey,
                caCertificate: h.tokenKeysCA,
                now: Self.now,
                id: Self.id
            )
        }
        // Written by hand with the users sub-CA's key: attestation usage, token-keys policy.
        let attestationUsage = h.attestation.extensions.suffix(2)
        let forged = try SM2Certificate.issue(
            subject: "forged attestation",
            subjectKey: try SM2PrivateKey().publicKey,
            issuer: h.userCA.subjectCommonName!,
            issuerKey: h.userKey,
            notBefore: Self.now,
            notAfter: Self.now + 86_400,
            isCertificateAuthority: false,
            extensions: Array(attestationUsage)
        )
        #expect(KeyPurpose.attestation.isStated(by: forged))
        let problem = SM2IdentityCA.problem(
            with: forged,
            as: .attestation,
            intermediates: [h.userCA],
            root: h.root,
            at: Self.now + 60,
            id: Self.id
        )
        #expect(problem?.contains("may not issue") == true, "\(problem ?? "accepted")")
    }

    @Test(
        "openssl reads the hierarchy: ukey's purpose and policy OIDs, the path lengths, and each signature over the TBSCertificate with the CA's key and the ID"
    )
    func openSSLReadsIt() throws {
        let h = try Hierarchy()
        let directory = try TemporaryDirectory("sm2-ca")
        for (name, certificate) in [("root", h.root), ("keys-ca", h.tokenKeysCA), ("attestation", h.attestation)] {
            try certificate.pemRepresentation.write(
                toFile: directory.file("\(name).pem"),
                atomically: true,
                encoding: .utf8
            )
        }
        let text = try ExternalTool("openssl").run([
            "x509", "-in", directory.file("attestation.pem"), "-noout", "-text",
        ])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains(KeyPurpose.attestation.extendedKeyUsageOID), "\(text.stdout)")
        #expect(text.stdout.contains(CertificatePolicy.tokenKeys.oid), "\(text.stdout)")
        #expect(text.stdout.contains("CA:FALSE"))
        let ca = try ExternalTool("openssl").run(["x509", "-in", directory.file("keys-ca.pem"), "-noout", "-text"])
        #expect(
            ca.stdout.contains("CA:TRUE, pathlen:0") && ca.stdout.contains(CertificatePolicy.tokenKeys.oid),
            "\(ca.stdout)"
        )
        let root = try ExternalTool("openssl").run(["x509", "-in", directory.file("root.pem"), "-noout", "-text"])
        #expect(root.stdout.contains("CA:TRUE, pathlen:1"), "\(root.stdout)")
        for (leaf, issuer) in [("attestation", "keys-ca"), ("keys-ca", "root"), ("root", "root")] {
            let certificate = leaf == "attestation" ? h.attestation : leaf == "keys-ca" ? h.tokenKeysCA : h.root
            try Data(certificate.tbsCertificate).write(to: URL(fileURLWithPath: directory.file("\(leaf).tbs")))
            try Data(certificate.signature).write(to: URL(fileURLWithPath: directory.file("\(leaf).sig")))
            let key = try ExternalTool("openssl").run([
                "x509", "-in", directory.file("\(issuer).pem"), "-noout", "-pubkey", "-out",
                directory.file("\(issuer).pub"),
            ])
            #expect(key.status == 0)
            let verified = try ExternalTool("openssl").run([
                "dgst", "-sm3", "-verify", directory.file("\(issuer).pub"), "-sigopt", "distid:1234567812345678",
                "-signature", directory.file("\(leaf).sig"), directory.file("\(leaf).tbs"),
            ])
            #expect(
                verified.stdout.contains("Verified OK"),
                "\(leaf) by \(issuer): \(verified.stdout)\(verified.stderr)"
            )
        }
    }
}
