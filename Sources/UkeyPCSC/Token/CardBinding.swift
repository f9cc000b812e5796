import Crypto
import Synchronization
import UkeyPIV
import UkeyToken
import X509

/// What the card roles share: the card, the PIN ukeyd signs and unwraps with, the soft token's
/// store (which keeps the root CA's certificates of the card's keys), and the card's identity.
public final class CardBinding: Sendable {
    public let client: PIVClient
    let pin: String
    /// The card's public keys by slot, read from its certificate objects when ukeyd opened it.
    public let publicKeys: [PIVSlot: P256.Signing.PublicKey]
    /// Who the card is: its serial and its keys, bound into the store at initialisation.
    public let identity: HardwareBinding
    /// The card's serial (CHUID), when it has one: no user may log in with this card.
    public let serial: UInt32?
    private let certificates = Mutex<[String: Certificate]>([:])

    /// Opens the card in `reader`: its 9a, 9c and 9d certificates (written by `ukeyctl card
    /// enroll`, each signed by its own key on the card) give the public keys.
    public init(reader: String?, pin: String) throws(TokenError) {
        client = PIVClient(card: SmartCard(reader: reader))
        self.pin = pin
        var keys: [PIVSlot: P256.Signing.PublicKey] = [:]
        for slot in [PIVSlot.authentication, .signature, .keyManagement] {
            let der: [UInt8]?
            do {
                der = try client.certificateBlocking(slot: slot)
            } catch {
                throw Self.tokenError(error)
            }
            guard let der else {
                throw TokenError(
                    .unavailable,
                    "the card has no certificate in slot \(String(slot.rawValue, radix: 16)); enrol it first (ukeyctl card enroll)"
                )
            }
            guard let certificate = try? Certificate(derEncoded: der),
                let key = P256.Signing.PublicKey(certificate.publicKey)
            else {
                throw TokenError(
                    .unavailable,
                    "the card's certificate in slot \(String(slot.rawValue, radix: 16)) is not a P-256 certificate"
                )
            }
            keys[slot] = key
        }
        publicKeys = keys
        let serial: UInt32?
        do {
            serial = try client.serialBlocking()
        } catch {
            throw Self.tokenError(error)
        }
        self.serial = serial
        let points = [PIVSlot.authentication, .signature, .keyManagement].flatMap {
            keys[$0].map { Array($0.x963Representation) } ?? []
        }
        let fingerprint = SHA256.hash(data: points).prefix(8).map {
            String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16)
        }.joined()
        identity = HardwareBinding(
            name: "card",
            identity: "serial \(serial.map(String.init) ?? "unknown"), keys \(fingerprint)"
        )
    }

    /// The key of a slot; every slot the roles use was read at open.
    func publicKey(_ slot: PIVSlot) throws(TokenError) -> P256.Signing.PublicKey {
        guard let key = publicKeys[slot] else {
            throw TokenError(.unavailable, "the card's slot \(String(slot.rawValue, radix: 16)) has no key")
        }
        return key
    }

    /// The root CA's certificate for a card key, issued once and kept in the sealed store
    /// (`name` "card-attestation" or "card-audit": one key, two certificates, two purposes).
    func certificate(
        _ name: String,
        slot: PIVSlot,
        purpose: KeyPurpose,
        records: SoftToken
    ) async throws(TokenError) -> Certificate {
        if let known = certificates.withLock({ $0[name] }) { return known }
        let issued = try await records.certificate(
            forHardwareKey: name,
            purpose: purpose,
            publicKey: try publicKey(slot)
        )
        certificates.withLock { $0[name] = issued }
        return issued
    }

    /// Signs a SHA-256 hash with the card's signature key (9c: the PIN before every signature).
    func signWithCard(_ hash: [UInt8]) async throws(TokenError) -> [UInt8] {
        do {
            return try await client.sign(hash, slot: .signature, pin: pin)
        } catch {
            throw Self.tokenError(error)
        }
    }

    /// The card's failures as token errors: a card that is away is `.unavailable` (nothing was
    /// done, and the call may succeed once it is back); a refusal says what the card answered.
    static func tokenError(_ error: CardError) -> TokenError {
        switch error.kind {
        case .unavailable: TokenError(.unavailable, "the card: \(error)")
        case .wrongCard: TokenError(.unavailable, "the card: \(error)")
        case .refused, .malformed: TokenError(.crypto, "the card: \(error)")
        }
    }
}
