import Foundation

/// What the soft token keeps in the sealed store, one record each, JSON-encoded.
enum SoftRecordName {
    static let token = "token"
    static let soPIN = "so-pin"
    static func key(_ key: TokenKey) -> String { "key.\(key.rawValue)" }
    static func certificate(_ name: String) -> String { "cert.\(name)" }
    static func user(_ name: String) -> String { "user.\(name)" }
    static let policySigner = "policy-signer"
    static func binding(_ name: String) -> String { "binding.\(name)" }
}

/// Token-wide settings and counters.
struct TokenRecord: Codable, Sendable {
    var serial: String
    var createdAt: Date
    /// Boots (resets) since initialisation; quoted so a verifier sees a reboot.
    var bootCounter: UInt64
    var pinMaxTries: Int
    var kdf: PinRecord.KDF
    /// The algorithm of the token's own keys: nil (P-256, and every record written before SM2)
    /// or "sm2", with the SM2 distinguishing ID.
    var algorithm: String? = nil
    var sm2ID: String? = nil
}

/// A user: PIN verifier, roles, own signing key and identity certificate.
struct UserRecord: Codable, Sendable {
    var name: String
    var roles: [String]
    var pin: PinRecord
    /// Raw P-256 private key (soft keys role); nil when the key lives on a smart card.
    var key: [UInt8]?
    /// DER identity certificate issued by the root CA.
    var certificate: [UInt8]
    /// The serial of the user's own card (users = "pcsc"), whose 9a key the certificate names
    /// and whose PIN is the user's; nil for a user whose PIN the store checks.
    var card: UInt32?
}

enum RecordCoding {
    static func encode<T: Encodable>(_ value: T) throws(TokenError) -> [UInt8] {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            encoder.dateEncodingStrategy = .iso8601
            return Array(try encoder.encode(value))
        } catch {
            throw TokenError(.store, "cannot encode a record: \(error)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]?, name: String) throws(TokenError) -> T {
        guard let bytes else { throw TokenError(.store, "the sealed store lacks its '\(name)' record") }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(type, from: Data(bytes))
        } catch {
            throw TokenError(.store, "the '\(name)' record in the sealed store does not decode: \(error)")
        }
    }
}
