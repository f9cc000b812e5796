import ArgumentParser
import UkeyVarlink
import Crypto
import Foundation
import UkeySM
import UkeyToken
import X509
#if canImport(Glibc)
import Glibc
#endif

/// `ukeyctl keygen --out NAME`: a policy-signer key pair, for a site that has no PKI yet.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract:
            "Make a policy-signer key (NAME.key.pem, mode 0600) and its self-signed certificate (NAME.pem): P-256, or SM2 with --algorithm sm2.",
        discussion: """
            Keep NAME.key.pem offline; enrol NAME.pem in the token at initialisation. Sign a policy with \
            'ukeyctl policy sign POLICY.yaml --key NAME.key.pem', or with openssl: \
            'openssl dgst -sha256 -sign NAME.key.pem -out POLICY.yaml.sig POLICY.yaml' (P-256), \
            'openssl dgst -sm3 -sign NAME.key.pem -sigopt distid:1234567812345678 -out POLICY.yaml.sig POLICY.yaml' (SM2: \
            the ID must be given; OpenSSL 3.0 signs over an empty one without it).
            """
    )

    enum Algorithm: String, ExpressibleByArgument, CaseIterable {
        case p256, sm2
    }

    @Option(help: "The key's algorithm: p256 (ECDSA, SHA-256) or sm2 (SM2 with SM3).")
    var algorithm: Algorithm = .p256

    @Option(help: "The path prefix of the files to write.")
    var out: String

    @Option(help: "The certificate's common name.")
    var commonName = "ukey policy signer"

    @Option(help: "Days the certificate is valid.")
    var days = 3650

    @OptionGroup var output: JSONOutput

    /// What was written, as a person or --json reads it.
    func said(key: String, certificate: String, what: String) {
        if output.json {
            output.emit([
                "key": .string(key), "certificate": .string(certificate), "algorithm": .string(algorithm.rawValue),
            ])
        } else {
            print("wrote \(key) (\(what)private key, mode 0600) and \(certificate) (\(what)certificate)")
        }
    }

    func run() throws {
        let keyPath = "\(out).key.pem"
        let certPath = "\(out).pem"
        guard access(keyPath, F_OK) != 0 else { throw InputError("\(keyPath) exists; refusing to overwrite a key") }
        guard (1...36_500).contains(days) else { throw InputError("--days must be 1-36500") }
        if algorithm == .sm2 { return try writeSM2(keyPath: keyPath, certPath: certPath) }
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let certificate: Certificate
        do {
            let name = try DistinguishedName {
                OrganizationName("ukey")
                CommonName(commonName)
            }
            certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: Certificate.PublicKey(key.publicKey),
                notValidBefore: now - 300,
                notValidAfter: now + TimeInterval(days) * 86_400,
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
                },
                issuerPrivateKey: Certificate.PrivateKey(key)
            )
        } catch {
            throw InputError("cannot make the certificate: \(error)")
        }
        try PolicyFiles.write(Array(key.pemRepresentation.utf8) + [0x0a], to: keyPath, mode: 0o600)
        try PolicyFiles.write(Array(try IdentityCA.pem(certificate).utf8) + [0x0a], to: certPath, mode: 0o644)
        said(key: keyPath, certificate: certPath, what: "")
    }

    /// An SM2 key and its self-signed certificate, signed SM2-with-SM3 with the GM/T default ID.
    private func writeSM2(keyPath: String, certPath: String) throws {
        let now = Date()
        let key: SM2PrivateKey
        let certificate: SM2Certificate
        do {
            key = try SM2PrivateKey()
            certificate = try SM2Certificate.selfSigned(
                key: key,
                commonName: commonName,
                notBefore: now - 300,
                notAfter: now + TimeInterval(days) * 86_400,
                isCertificateAuthority: false
            )
        } catch {
            throw InputError("cannot make the SM2 key or its certificate: \(error)")
        }
        try PolicyFiles.write(Array(key.pemRepresentation.utf8), to: keyPath, mode: 0o600)
        try PolicyFiles.write(Array(certificate.pemRepresentation.utf8), to: certPath, mode: 0o644)
        said(key: keyPath, certificate: certPath, what: "SM2 ")
    }
}
