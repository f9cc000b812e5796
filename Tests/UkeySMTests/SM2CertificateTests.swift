import Foundation
import Testing
import UkeySM
import UkeyTesting

/// SM2 certificates, written and read by ukey, checked against OpenSSL both ways.
@Suite("SM2 X.509 certificates (SM2-with-SM3), with the distinguishing ID explicit")
struct SM2CertificateTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func openssl(_ arguments: [String]) throws -> ExternalTool.Result {
        try ExternalTool("openssl").run(arguments)
    }

    @Test(
        "a self-signed CA and a certificate it issues: read back field for field, each signature checked with the ID, the chain by names"
    )
    func issueAndRead() throws {
        let caKey = try SM2PrivateKey()
        let ca = try SM2Certificate.selfSigned(
            key: caKey,
            commonName: "ukey root CA",
            notBefore: Self.now,
            notAfter: Self.now + 86_400 * 365,
            isCertificateAuthority: true
        )
        let again = try SM2Certificate(derRepresentation: ca.derRepresentation)
        #expect(again == ca)
        #expect(try SM2Certificate(pemRepresentation: ca.pemRepresentation) == ca)
        #expect(ca.subjectCommonName == "ukey root CA" && ca.issuerName == ca.subjectName)
        #expect(ca.isCertificateAuthority)
        #expect(ca.notBefore == Self.now && ca.notAfter == Self.now + 86_400 * 365)
        #expect(ca.publicKey == (try caKey.publicKey))
        #expect(ca.isSigned(by: try caKey.publicKey))
        #expect(!ca.isSigned(by: try caKey.publicKey, id: []), "signed with the GM/T default ID, not an empty one")
        #expect(!ca.isSigned(by: try SM2PrivateKey().publicKey))

        let userKey = try SM2PrivateKey()
        let user = try SM2Certificate.issue(
            subject: "alice",
            subjectKey: try userKey.publicKey,
            issuer: "ukey root CA",
            issuerKey: caKey,
            notBefore: Self.now,
            notAfter: Self.now + 86_400,
            isCertificateAuthority: false
        )
        #expect(!user.isCertificateAuthority && user.subjectCommonName == "alice")
        #expect(user.issuerName == ca.subjectName)
        #expect(user.isSigned(by: ca.publicKey))
        #expect(!user.isSigned(by: try userKey.publicKey))
        #expect(user.isValid(at: Self.now + 60) && !user.isValid(at: Self.now + 86_401))
        // A date past 2049 is written as GeneralizedTime and read back.
        let late = try SM2Certificate.selfSigned(
            key: caKey,
            commonName: "late",
            notBefore: Self.now,
            notAfter: Date(timeIntervalSince1970: 4_102_444_800),
            isCertificateAuthority: false
        )
        #expect(late.notAfter == Date(timeIntervalSince1970: 4_102_444_800))
    }

    @Test(
        "OpenSSL reads ukey's certificate (SM2-with-SM3, the SM2 curve, CA:TRUE) and verifies its signature over the TBSCertificate with -sigopt distid; ukey reads OpenSSL's and verifies it with the same ID"
    )
    func openSSLInterop() throws {
        let directory = try TemporaryDirectory("sm2-cert")
        let key = try SM2PrivateKey()
        let ours = try SM2Certificate.selfSigned(
            key: key,
            commonName: "ukey root CA",
            notBefore: Date() - 60,
            notAfter: Date() + 86_400,
            isCertificateAuthority: true
        )
        try Data(ours.pemRepresentation.utf8).write(to: URL(fileURLWithPath: directory.file("ours.pem")))
        let text = try Self.openssl(["x509", "-in", directory.file("ours.pem"), "-noout", "-text"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("Signature Algorithm: SM2-with-SM3"))
        #expect(text.stdout.contains("ASN1 OID: SM2"))
        #expect(text.stdout.contains("CN = ukey root CA"))
        #expect(text.stdout.contains("CA:TRUE"))

        // The signature, checked by OpenSSL over exactly the bytes ukey signed.
        try Data(ours.tbsCertificate).write(to: URL(fileURLWithPath: directory.file("tbs")))
        try Data(ours.signature).write(to: URL(fileURLWithPath: directory.file("sig")))
        let pub = try Self.openssl([
            "x509", "-in", directory.file("ours.pem"), "-noout", "-pubkey", "-out", directory.file("pub.pem"),
        ])
        #expect(pub.status == 0)
        let verified = try Self.openssl([
            "dgst", "-sm3", "-verify", directory.file("pub.pem"), "-sigopt", "distid:1234567812345678", "-signature",
            directory.file("sig"), directory.file("tbs"),
        ])
        #expect(verified.stdout.contains("Verified OK"), "\(verified.stdout)\(verified.stderr)")

        // OpenSSL's own, signed with the ID given: ukey reads and verifies it.
        try Data(key.pemRepresentation.utf8).write(to: URL(fileURLWithPath: directory.file("key.pem")))
        let made = try Self.openssl([
            "req", "-new", "-x509", "-key", directory.file("key.pem"), "-sm3", "-sigopt", "distid:1234567812345678",
            "-subj", "/CN=made by openssl", "-days", "2", "-out", directory.file("theirs.pem"),
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let theirs = try SM2Certificate(
            pemRepresentation: String(contentsOfFile: directory.file("theirs.pem"), encoding: .utf8)
        )
        #expect(theirs.subjectCommonName == "made by openssl" && theirs.isCertificateAuthority)
        #expect(theirs.isSigned(by: try key.publicKey))
        #expect(!theirs.isSigned(by: try key.publicKey, id: []))
    }

    @Test(
        "what OpenSSL 3.0's verify accepts: an SM2 certificate signed with a non-empty ID is refused under -check_ss_sig, ukey's and OpenSSL's own alike, even with -vfyopt distid; one signed over an empty ID passes"
    )
    func openSSLVerify() throws {
        let directory = try TemporaryDirectory("sm2-verify")
        let key = try SM2PrivateKey()
        let ours = try SM2Certificate.selfSigned(
            key: key,
            commonName: "ukey root CA",
            notBefore: Date() - 60,
            notAfter: Date() + 86_400,
            isCertificateAuthority: true
        )
        try Data(ours.pemRepresentation.utf8).write(to: URL(fileURLWithPath: directory.file("ours.pem")))
        try Data(key.pemRepresentation.utf8).write(to: URL(fileURLWithPath: directory.file("key.pem")))
        let plain = try Self.openssl(["verify", "-CAfile", directory.file("ours.pem"), directory.file("ours.pem")])
        #expect(
            plain.status == 0,
            "without -check_ss_sig a trusted root's own signature is not checked: \(plain.stdout)\(plain.stderr)"
        )
        for extra in [[], ["-vfyopt", "distid:1234567812345678"]] {
            let checked = try Self.openssl(
                ["verify", "-CAfile", directory.file("ours.pem"), "-check_ss_sig"] + extra + [
                    directory.file("ours.pem")
                ]
            )
            #expect(
                checked.status != 0,
                "OpenSSL 3.0 now checks an SM2 signature with the ID (\(extra)): update docs/operations.md's SM2 section"
            )
        }
        let emptyID = try Self.openssl([
            "req", "-new", "-x509", "-key", directory.file("key.pem"), "-sm3", "-subj", "/CN=empty id", "-days", "2",
            "-out", directory.file("empty.pem"),
        ])
        #expect(emptyID.status == 0)
        let accepted = try Self.openssl([
            "verify", "-CAfile", directory.file("empty.pem"), "-check_ss_sig", directory.file("empty.pem"),
        ])
        #expect(accepted.status == 0, "\(accepted.stdout)\(accepted.stderr)")
        // And ukey sees that one for what it is: signed over an empty ID.
        let empty = try SM2Certificate(
            pemRepresentation: String(contentsOfFile: directory.file("empty.pem"), encoding: .utf8)
        )
        #expect(empty.isSigned(by: try key.publicKey, id: []))
        #expect(!empty.isSigned(by: try key.publicKey))
    }

    @Test(
        "garbage is refused with a reason: cut, padded, oversized, a P-256 certificate, an unknown critical extension, flipped bytes"
    )
    func garbage() throws {
        let key = try SM2PrivateKey()
        let der = try SM2Certificate.selfSigned(
            key: key,
            commonName: "x",
            notBefore: Self.now,
            notAfter: Self.now + 60,
            isCertificateAuthority: false
        ).derRepresentation
        for bad in [
            [], Array(der.dropLast()), der + [0], [UInt8](repeating: 0x30, count: SM2Certificate.maxSize + 1),
            Array(der.prefix(40)),
        ] {
            #expect(throws: SMError.self) { try SM2Certificate(derRepresentation: bad) }
        }
        // Every single-byte change either is refused or reads as a certificate whose signature fails.
        for index in stride(from: 0, to: der.count, by: 3) {
            var flipped = der
            flipped[index] ^= 0x01
            if let read = try? SM2Certificate(derRepresentation: flipped) {
                #expect(!read.isSigned(by: try key.publicKey), "byte \(index) changed and the signature still held")
            }
        }

        let directory = try TemporaryDirectory("sm2-garbage")
        let p256 = try Self.openssl([
            "req", "-new", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            directory.file("k"), "-subj", "/CN=p256", "-days", "1", "-outform", "DER", "-out",
            directory.file("p256.der"),
        ])
        #expect(p256.status == 0)
        let error = #expect(throws: SMError.self) {
            try SM2Certificate(
                derRepresentation: Array(try Data(contentsOf: URL(fileURLWithPath: directory.file("p256.der"))))
            )
        }
        #expect(error?.description.contains("SM2-with-SM3") == true, "\(String(describing: error))")

        try Data(key.pemRepresentation.utf8).write(to: URL(fileURLWithPath: directory.file("key.pem")))
        try "[ext]\n1.2.3.4.5 = critical,ASN1:UTF8String:unknown\n".write(
            toFile: directory.file("ext.cnf"),
            atomically: true,
            encoding: .utf8
        )
        let critical = try Self.openssl([
            "req", "-new", "-x509", "-key", directory.file("key.pem"), "-sm3", "-sigopt", "distid:1234567812345678",
            "-subj", "/CN=critical", "-days", "1", "-config", "/dev/null", "-extfile", directory.file("ext.cnf"),
            "-extensions", "ext", "-outform", "DER", "-out", directory.file("critical.der"),
        ])
        if critical.status != 0 {
            // Older req has no -extfile: use -addext.
            let again = try Self.openssl([
                "req", "-new", "-x509", "-key", directory.file("key.pem"), "-sm3", "-sigopt", "distid:1234567812345678",
                "-subj", "/CN=critical", "-days", "1", "-addext", "1.2.3.4.5=critical,ASN1:UTF8String:unknown",
                "-outform", "DER", "-out", directory.file("critical.der"),
            ])
            #expect(again.status == 0, "\(again.stderr)")
        }
        let refused = #expect(throws: SMError.self) {
            try SM2Certificate(
                derRepresentation: Array(try Data(contentsOf: URL(fileURLWithPath: directory.file("critical.der"))))
            )
        }
        #expect(refused?.description.contains("critical") == true, "\(String(describing: refused))")
    }

    @Test(
        "extensions: a caller's are written after basicConstraints and keyUsage and read back as they were, a CA's path length is kept (openssl prints it), and an extension twice is refused"
    )
    func extensions() throws {
        let key = try SM2PrivateKey()
        let mine = SM2CertificateExtension(
            oid: SM2CertificateExtension.oid([1, 2, 3, 4, 5]),
            critical: false,
            value: [0x0c, 0x04] + Array("ukey".utf8)
        )
        let ca = try SM2Certificate.issue(
            subject: "path zero",
            subjectKey: key.publicKey,
            issuer: "path zero",
            issuerKey: key,
            notBefore: Self.now,
            notAfter: Self.now + 60,
            isCertificateAuthority: true,
            maxPathLength: 0,
            extensions: [mine]
        )
        let read = try SM2Certificate(derRepresentation: ca.derRepresentation)
        #expect(read.maxPathLength == 0 && read.isCertificateAuthority)
        #expect(read.extensions.count == 3)
        #expect(read.extensions.last == mine)
        #expect(read.extensionValue(oid: SM2CertificateExtension.oid([1, 2, 3, 4, 5])) == mine)
        #expect(read.extensionValue(oid: SM2CertificateExtension.oid([1, 2, 3, 4, 6])) == nil)
        let leaf = try SM2Certificate.selfSigned(
            key: key,
            commonName: "leaf",
            notBefore: Self.now,
            notAfter: Self.now + 60,
            isCertificateAuthority: false
        )
        #expect(leaf.maxPathLength == nil)

        let directory = try TemporaryDirectory("sm2-ext")
        try ca.pemRepresentation.write(toFile: directory.file("ca.pem"), atomically: true, encoding: .utf8)
        let text = try Self.openssl(["x509", "-in", directory.file("ca.pem"), "-noout", "-text"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("CA:TRUE, pathlen:0"), "\(text.stdout)")
        #expect(text.stdout.contains("1.2.3.4.5") && text.stdout.contains("ukey"), "\(text.stdout)")

        // basicConstraints again, after the writer's own: the reader (which issue ends with) refuses it.
        let twice = SM2CertificateExtension(
            oid: SM2CertificateExtension.oid([2, 5, 29, 19]),
            critical: false,
            value: [0x30, 0x00]
        )
        let error = #expect(throws: SMError.self) {
            try SM2Certificate.issue(
                subject: "x",
                subjectKey: key.publicKey,
                issuer: "x",
                issuerKey: key,
                notBefore: Self.now,
                notAfter: Self.now + 60,
                isCertificateAuthority: false,
                extensions: [twice]
            )
        }
        #expect(error?.description.contains("twice") == true, "\(String(describing: error))")
        // A path length is for a CA.
        #expect(throws: SMError.self) {
            try SM2Certificate.issue(
                subject: "x",
                subjectKey: key.publicKey,
                issuer: "x",
                issuerKey: key,
                notBefore: Self.now,
                notAfter: Self.now + 60,
                isCertificateAuthority: false,
                maxPathLength: 0
            )
        }
    }
}
