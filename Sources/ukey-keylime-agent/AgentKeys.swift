import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// The agent's own keys, kept in its state directory (0700, files 0600) so a restarted agent is
/// the same agent to Keylime: the TLS key and its self-signed certificate (registered with the
/// registrar as `mtls_cert`, which the verifier and tenant then trust for this agent alone), and
/// the payload key (`pubkey`), which PCR 16 binds to the host's quotes.
struct AgentKeys {
    let tlsKeyPEM: String
    let tlsCertificatePEM: String
    let payloadPublicKeyPEM: String

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func loadOrCreate(directory: String, uuid: String, ip: String) throws -> AgentKeys {
        try StateDirectory.ensurePrivate(directory)
        let tlsKey = try StateDirectory.loadOrCreate("\(directory)/tls-key.pem") {
            try _RSA.Signing.PrivateKey(keySize: .bits2048).pemRepresentation
        }
        let payloadKey = try StateDirectory.loadOrCreate("\(directory)/payload-key.pem") {
            try _RSA.Encryption.PrivateKey(keySize: .bits2048).pemRepresentation
        }
        let signing = try _RSA.Signing.PrivateKey(pemRepresentation: tlsKey)
        let certificatePath = "\(directory)/tls-cert.pem"
        let certificate = try StateDirectory.loadOrCreate(certificatePath) {
            try selfSigned(signing, uuid: uuid, ip: ip)
        }
        // A certificate for another key (a key file replaced by hand) is made again.
        let parsed = try Certificate(pemEncoded: certificate)
        guard parsed.publicKey == Certificate.PublicKey(signing.publicKey) else {
            throw Failure(
                description: "\(certificatePath) is not for \(directory)/tls-key.pem: remove both to make new ones"
            )
        }
        return AgentKeys(
            tlsKeyPEM: tlsKey,
            tlsCertificatePEM: certificate,
            payloadPublicKeyPEM: try _RSA.Encryption.PrivateKey(pemRepresentation: payloadKey).publicKey
                .pemRepresentation
        )
    }

    /// As rust-keylime makes it: CN = the uuid, the agent's address and localhost as names.
    static func selfSigned(_ key: _RSA.Signing.PrivateKey, uuid: String, ip: String) throws -> String {
        let name = try DistinguishedName { CommonName(uuid) }
        let now = Date()
        var names: [GeneralName] = [.dnsName("localhost")]
        if let address = IPv4(ip) { names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address)))) }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: try Certificate.Extensions { SubjectAlternativeNames(names) },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return try certificate.serializeAsPEM().pemString
    }

    static func IPv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".")
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }
}

/// The state directory's rules: 0700, owned by us; its files 0600.
enum StateDirectory {
    static func ensurePrivate(_ path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(
                atPath: path,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        }
        var info = stat()
        guard stat(path, &info) == 0 else { throw AgentKeys.Failure(description: "cannot read \(path)") }
        guard info.st_uid == geteuid() else {
            throw AgentKeys.Failure(
                description: "\(path) belongs to uid \(info.st_uid), not to this agent (uid \(geteuid()))"
            )
        }
        guard info.st_mode & 0o077 == 0 else {
            throw AgentKeys.Failure(
                description: "\(path) is open to others (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 700 it"
            )
        }
    }

    /// The file's text, or `make`'s, written 0600 and renamed into place.
    static func loadOrCreate(_ path: String, _ make: () throws -> String) throws -> String {
        if let data = FileManager.default.contents(atPath: path) {
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & 0o077 == 0 else {
                throw AgentKeys.Failure(description: "\(path) is readable by others: chmod 600 it")
            }
            return String(decoding: data, as: UTF8.self)
        }
        let text = try make()
        let temporary = path + ".new"
        guard
            FileManager.default.createFile(
                atPath: temporary,
                contents: Data(text.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else { throw AgentKeys.Failure(description: "cannot write \(temporary)") }
        guard rename(temporary, path) == 0 else { throw AgentKeys.Failure(description: "cannot rename \(temporary)") }
        return text
    }
}
