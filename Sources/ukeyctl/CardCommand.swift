import ArgumentParser
import Crypto
import Foundation
import UkeyPCSC
import UkeyPIV
import UkeyToken
import X509

/// `ukeyctl card`: the smart card that holds the Ukey's keys (token keys/users/store = "pcsc").
struct CardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "card",
        abstract: "Provision and inspect the PIV card (a YubiKey, a PIV smart card, or ukey-vcard) ukeyd's pcsc roles use.",
        subcommands: [CardEnroll.self, CardStatus.self]
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
        abstract: "Generate P-256 keys on the card in 9a (user authentication), 9c (quotes, audit) and 9d (the store key), each with a certificate the card signs itself.",
        discussion: """
            Each self-signed certificate is the card's proof that it holds the key (only the card can \
            make its signature). When ukeyd starts with keys = "pcsc", it reads the keys from these \
            certificates, wraps its store to 9d, and its root CA certifies 9c for quotes and audit. \
            Enrolling again replaces the keys: a store wrapped to the old 9d no longer opens.
            """
    )

    @OptionGroup var card: CardOptions

    @Option(help: "The card management key, in hex (3DES: 48 digits; AES-128/192/256: 32/48/64 digits). Default: the factory key.")
    var managementKey: String?

    @Option(help: "The management key's algorithm: 3des, aes128, aes192, aes256.")
    var managementAlgorithm = "3des"

    func run() async throws {
        let key = try parsedManagementKey()
        let client = card.client
        let serial = try await client.serial()
        for (slot, name) in [(PIVSlot.authentication, "authentication"), (.signature, "signature"), (.keyManagement, "key management")] {
            let publicKey = try await client.generate(slot: slot, managementKey: key)
            let certificate = try await IdentityCA.selfSigned(
                key: Certificate.PrivateKey(CardKey(client: client, slot: slot, pin: card.pin, publicKey: publicKey)),
                commonName: "ukey card \(serial.map(String.init) ?? "") \(String(slot.rawValue, radix: 16))", now: Date())
            try await client.putCertificate(try IdentityCA.der(certificate), slot: slot, managementKey: key)
            let fingerprint = SHA256.hash(data: publicKey.x963Representation).prefix(8).map { String(format: "%02x", $0) }.joined()
            print("slot \(String(slot.rawValue, radix: 16)) (\(name)): new P-256 key \(fingerprint)…, self-signed certificate written")
        }
        print("card \(serial.map(String.init) ?? "(no serial)") enrolled; start ukeyd with [token] keys = \"pcsc\" and the card's PIN in [pcsc] pin-file")
    }

    func parsedManagementKey() throws -> ManagementKey {
        guard let hex = managementKey else { return .factoryDefault }
        let algorithms: [String: ManagementKeyAlgorithm] = ["3des": .tripleDES, "aes128": .aes128, "aes192": .aes192, "aes256": .aes256]
        guard let algorithm = algorithms[managementAlgorithm] else { throw InputError("--management-algorithm must be one of 3des, aes128, aes192, aes256") }
        let bytes = stride(from: 0, to: hex.count, by: 2).compactMap { offset -> UInt8? in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: min(2, hex.count - offset))], radix: 16)
        }
        guard hex.count % 2 == 0, bytes.count * 2 == hex.count, bytes.count == algorithm.keyLength else {
            throw InputError("--management-key must be \(algorithm.keyLength * 2) hex digits for \(managementAlgorithm)")
        }
        return ManagementKey(algorithm: algorithm, bytes: bytes)
    }
}

/// `ukeyctl card status`: the card's serial, PIN tries and which slots hold a certificate.
struct CardStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "The card's serial, PIN tries left and its enrolled slots.")

    @OptionGroup var card: CardOptions

    func run() async throws {
        let client = card.client
        print("serial: \(try await client.serial().map(String.init) ?? "-")")
        switch try await client.verify(nil) {
        case .accepted: print("PIN: verified in this session")
        case .wrong(let left): print("PIN: \(left) tries left")
        case .blocked: print("PIN: blocked (unblock it with the PUK)")
        }
        for slot in [PIVSlot.authentication, .signature, .keyManagement, .cardAuthentication] {
            let der = try await client.certificate(slot: slot)
            let subject = der.flatMap { try? Certificate(derEncoded: $0) }.map { "\($0.subject)" }
            print("slot \(String(slot.rawValue, radix: 16)): \(subject ?? (der == nil ? "empty" : "a certificate that does not parse"))")
        }
    }
}
