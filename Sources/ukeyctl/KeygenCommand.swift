import ArgumentParser
import Crypto
import Foundation
import UkeyToken
import X509
#if canImport(Glibc)
import Glibc
#endif

/// `ukeyctl keygen --out NAME`: a policy-signer key pair, for a site that has no PKI yet.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a P-256 policy-signer key (NAME.key.pem, mode 0600) and its self-signed certificate (NAME.pem).",
        discussion: """
            Keep NAME.key.pem offline; enrol NAME.pem in the token at initialisation. Sign a policy with \
            'openssl dgst -sha256 -sign NAME.key.pem -out POLICY.yaml.sig POLICY.yaml'.
            """
    )

    @Option(help: "The path prefix of the files to write.")
    var out: String

    @Option(help: "The certificate's common name.")
    var commonName = "ukey policy signer"

    @Option(help: "Days the certificate is valid.")
    var days = 3650

    func run() throws {
        let keyPath = "\(out).key.pem", certPath = "\(out).pem"
        guard access(keyPath, F_OK) != 0 else { throw InputError("\(keyPath) exists; refusing to overwrite a key") }
        guard (1...36_500).contains(days) else { throw InputError("--days must be 1-36500") }
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
        print("wrote \(keyPath) (private key, mode 0600) and \(certPath) (certificate)")
    }
}
