import ArgumentParser
import UkeyVarlink
import Crypto
import Foundation
import UkeyAPI
import UkeyPCSC
import UkeyPIV
import UkeyToken
import X509

/// `ukeyctl card`: the smart card that holds the Ukey's keys (token keys/users/store = "pcsc").
struct CardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "card",
        abstract:
            "Provision and inspect the PIV card (a YubiKey, a PIV smart card, or ukey-vcard) ukeyd's pcsc roles use.",
        subcommands: [CardEnroll.self, CardCertify.self, CardSetManagementKey.self, CardStatus.self]
    )
}

/// Options every card command takes.
struct CardOptions: ParsableArguments {
    @Option(help: "Part of the reader's name. Default: the first reader.")
    var reader: String?

    @Option(help: "The card's PIN (PIV: 6-8 characters). Default: the factory PIN 123456.")
    var pin = "123456"

    var client: PIVClient { PIVClient(card: SmartCard(reader: reader)) }
}

/// `ukeyctl card enroll`: makes the three keys ukeyd uses on the card and proves the card holds them.
struct CardEnroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract:
            "Generate P-256 keys on the card in 9a (user authentication), 9c (quotes, audit) and 9d (the store key), each with a certificate the card signs itself.",
        discussion: """
            Each self-signed certificate is the card's proof that it holds the key (only the card can \
            make its signature). When ukeyd starts with keys = "pcsc", it reads the keys from these \
            certificates, wraps its store to 9d, and its root CA certifies 9c for quotes and audit. \
            Enrolling again replaces the keys: a store wrapped to the old 9d no longer opens.
            """
    )

    @OptionGroup var card: CardOptions

    @OptionGroup var management: ManagementKeyOptions

    @Option(
        help:
            "The user whose own card this is (users = \"pcsc\"): the 9a certificate names them, and ukeyd's AddUser finds the card by that name."
    )
    var user: String?

    @OptionGroup var output: JSONOutput

    func run() async throws {
        let key = try management.key()
        let client = card.client
        let serial = try await client.serial()
        var slots: [String: JSONValue] = [:]
        for (slot, name) in [
            (PIVSlot.authentication, "authentication"), (.signature, "signature"), (.keyManagement, "key management"),
        ] {
            let publicKey = try await client.generate(slot: slot, managementKey: key)
            let certificate = try await IdentityCA.selfSigned(
                key: Certificate.PrivateKey(CardKey(client: client, slot: slot, pin: card.pin, publicKey: publicKey)),
                commonName: slot == .authentication && user != nil
                    ? user! : "ukey card \(serial.map(String.init) ?? "") \(String(slot.rawValue, radix: 16))",
                now: Date()
            )
            try await client.putCertificate(try IdentityCA.der(certificate), slot: slot, managementKey: key)
            let fingerprint = SHA256.hash(data: publicKey.x963Representation).prefix(8).map {
                String(format: "%02x", $0)
            }.joined()
            slots[String(slot.rawValue, radix: 16)] = .string(fingerprint)
            if !output.json {
                print(
                    "slot \(String(slot.rawValue, radix: 16)) (\(name)): new P-256 key \(fingerprint)…, self-signed certificate written"
                )
            }
        }
        if output.json {
            output.emit([
                "serial": serial.map { .int(Int($0)) } ?? .null, "user": user.map { .string($0) } ?? .null,
                "keys": .object(slots),
            ])
        } else if let user {
            print(
                "card \(serial.map(String.init) ?? "(no serial)") enrolled as \(user)'s card; with [token] users = \"pcsc\", 'ukeyctl user add \(user)' with this card's PIN binds it"
            )
        } else {
            print(
                "card \(serial.map(String.init) ?? "(no serial)") enrolled; start ukeyd with [token] keys = \"pcsc\" and the card's PIN in [pcsc] pin-file"
            )
        }
    }

}

/// The card management key (9B), which authorises key generation and certificate writes.
struct ManagementKeyOptions: ParsableArguments {
    @Option(
        help:
            "The card management key, in hex (3DES: 48 digits; AES-128/192/256: 32/48/64 digits). Default: the factory key."
    )
    var managementKey: String?

    @Option(help: "The management key's algorithm: 3des, aes128, aes192, aes256.")
    var managementAlgorithm = "3des"

    func key() throws -> ManagementKey {
        guard let hex = managementKey else { return .factoryDefault }
        return try Self.parse(hex, algorithm: managementAlgorithm, option: "--management-key")
    }

    static func parse(_ hex: String, algorithm name: String, option: String) throws -> ManagementKey {
        let algorithms: [String: ManagementKeyAlgorithm] = [
            "3des": .tripleDES, "aes128": .aes128, "aes192": .aes192, "aes256": .aes256,
        ]
        guard let algorithm = algorithms[name] else {
            throw InputError("the algorithm must be one of 3des, aes128, aes192, aes256, not '\(name)'")
        }
        let digits = Array(hex.utf8)
        guard digits.count == algorithm.keyLength * 2,
            digits.allSatisfy({
                UInt8(ascii: "0")...UInt8(ascii: "9") ~= $0 || UInt8(ascii: "a")...UInt8(ascii: "f") ~= ($0 | 0x20)
            })
        else {
            throw InputError("\(option) must be \(algorithm.keyLength * 2) hex digits for \(name)")
        }
        let bytes = stride(from: 0, to: digits.count, by: 2).compactMap {
            UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)
        }
        return ManagementKey(algorithm: algorithm, bytes: bytes)
    }
}

/// `ukeyctl card set-management-key`: replaces the factory management key.
struct CardSetManagementKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-management-key",
        abstract: "Replace the card management key (authenticated by the current one, --management-key)."
    )

    @OptionGroup var card: CardOptions
    @OptionGroup var management: ManagementKeyOptions

    @Option(help: "The new key, in hex; omit it to have one drawn at random and printed once.")
    var new: String?

    @Option(help: "The new key's algorithm: 3des, aes128, aes192, aes256.")
    var newAlgorithm = "aes128"

    @OptionGroup var output: JSONOutput

    func run() async throws {
        let current = try management.key()
        let key: ManagementKey
        var generated: String?
        if let new {
            key = try ManagementKeyOptions.parse(new, algorithm: newAlgorithm, option: "--new")
        } else {
            guard let length = ["3des": 24, "aes128": 16, "aes192": 24, "aes256": 32][newAlgorithm] else {
                throw InputError("--new-algorithm must be one of 3des, aes128, aes192, aes256")
            }
            var generator = SystemRandomNumberGenerator()
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            key = try ManagementKeyOptions.parse(
                bytes.map { String(format: "%02x", $0) }.joined(),
                algorithm: newAlgorithm,
                option: "--new"
            )
            generated = bytes.map { String(format: "%02x", $0) }.joined()
        }
        try await card.client.setManagementKey(key, current: current)
        if output.json {
            output.emit([
                "replaced": true, "algorithm": .string(newAlgorithm),
                "generatedKey": generated.map { .string($0) } ?? .null,
            ])
            return
        }
        if let generated { print("new management key (\(newAlgorithm)): \(generated)  -- keep it offline") }
        print("the card's management key is replaced")
    }
}

/// `ukeyctl card certify`: the token's CAs certify the card's keys, from requests the card signs.
/// A card is either ukeyd's keys card (its 9c key is ukeyd's attestation key) or a user's, never
/// both: whoever holds a card's PIN can make its 9c key sign, so a user's card must not be the
/// one that signs quotes and audit checkpoints.
struct CardCertify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certify",
        abstract:
            "Write ukeyd's certificates onto a card: on ukeyd's keys card, the token-keys CA's certificate of its 9c key; on a user's card (--user), the user CA's certificate of its 9a key, from a CSR the card signs.",
        discussion:
            "Run it after ukeyd is initialised on the card (keys = \"pcsc\") and, for a user's card, the user added. ukeyd's keys card is no user's: --user on it is refused."
    )

    @OptionGroup var card: CardOptions
    @OptionGroup var management: ManagementKeyOptions
    @OptionGroup var daemon: DaemonOptions

    @Option(help: "The user whose own card this is: their identity key is the card's 9a key.")
    var user: String?

    func run() async throws {
        let key = try management.key()
        let client = card.client
        let attestation = try daemon.call(Token.Certificate.self, .init(name: "attestation"))
        let keysCertificate = try? Certificate(pemEncoded: attestation.pem)
        let cardSignatureKey = try await client.certificate(slot: .signature).flatMap {
            try? Certificate(derEncoded: $0)
        }?.publicKey
        let isKeysCard = keysCertificate != nil && cardSignatureKey == keysCertificate?.publicKey
        switch (isKeysCard, user) {
        case (true, let user?):
            throw InputError(
                "this card holds ukeyd's keys (its 9c key signs quotes and audit checkpoints for whoever has its PIN): it cannot be \(user)'s card; enrol a card of their own with 'ukeyctl card enroll --user \(user)'"
            )
        case (true, nil):
            try await client.putCertificate(try IdentityCA.der(keysCertificate!), slot: .signature, managementKey: key)
            said(slot: "9c", keysCertificate!)
        case (false, nil):
            throw InputError(
                "this card's 9c key is not ukeyd's attestation key, so it is not ukeyd's keys card: name the user whose card it is with --user"
            )
        case (false, let user?):
            try await certifyUser(user, client: client, managementKey: key)
        }
    }

    private func certifyUser(_ user: String, client: PIVClient, managementKey key: ManagementKey) async throws {
        guard let enrolled = try await client.certificate(slot: .authentication),
            let selfSigned = try? Certificate(derEncoded: enrolled),
            let publicKey = P256.Signing.PublicKey(selfSigned.publicKey)
        else { throw InputError("the card's slot 9a holds no P-256 certificate: run 'ukeyctl card enroll' first") }
        // Proof of possession: the request is signed by the card's own 9a key.
        let signer = Certificate.PrivateKey(
            CardKey(client: client, slot: .authentication, pin: card.pin, publicKey: publicKey)
        )
        let request = try CertificateSigningRequest(
            version: .v1,
            subject: try DistinguishedName { CommonName(user) },
            privateKey: signer,
            attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        let csr = try request.serializeAsPEM().pemString
        let issued = try daemon.call(Admin.IssueCertificate.self, .init(user: user, csr: csr))
        guard let certificate = try? Certificate(pemEncoded: issued.certificate) else {
            throw InputError("ukeyd returned no certificate")
        }
        try await client.putCertificate(try IdentityCA.der(certificate), slot: .authentication, managementKey: key)
        said(slot: "9a", certificate)
    }

    private func said(slot: String, _ certificate: Certificate) {
        if daemon.json {
            print(
                DaemonOptions.jsonText(
                    .object([
                        "slot": .string(slot), "subject": .string("\(certificate.subject)"),
                        "issuer": .string("\(certificate.issuer)"),
                    ])
                )
            )
        } else {
            print("slot \(slot): \(certificate.subject), issued by \(certificate.issuer)")
        }
    }
}

/// `ukeyctl card status`: the card's serial, PIN tries and which slots hold a certificate.
struct CardStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The card's serial, PIN tries left and its enrolled slots."
    )

    @OptionGroup var card: CardOptions
    @OptionGroup var output: JSONOutput

    func run() async throws {
        let client = card.client
        let serial = try await client.serial()
        let pin: String
        var json: [String: JSONValue] = ["serial": serial.map { .int(Int($0)) } ?? .null]
        switch try await client.verify(nil) {
        case .accepted:
            pin = "PIN: verified in this session"
            json["pin"] = "verified"
        case .wrong(let left):
            pin = "PIN: \(left) tries left"
            json["pin"] = "unverified"
            json["pinTriesLeft"] = .int(left)
        case .blocked:
            pin = "PIN: blocked (unblock it with the PUK)"
            json["pin"] = "blocked"
        }
        var slots: [String: JSONValue] = [:]
        var lines = ["serial: \(serial.map(String.init) ?? "-")", pin]
        for slot in [PIVSlot.authentication, .signature, .keyManagement, .cardAuthentication] {
            let der = try await client.certificate(slot: slot)
            let subject = der.flatMap { try? Certificate(derEncoded: $0) }.map { "\($0.subject)" }
            let name = String(slot.rawValue, radix: 16)
            lines.append("slot \(name): \(subject ?? (der == nil ? "empty" : "a certificate that does not parse"))")
            slots[name] = der == nil ? .null : .string(subject ?? "")
        }
        json["slots"] = .object(slots)
        if output.json {
            output.emit(json)
        } else {
            for line in lines { print(line) }
        }
    }
}
