import Crypto
import UkeyCore
import UkeyToken
import X509

/// The keys role on a PIV card: audit checkpoints signed with the card's signature key (9c),
/// random bytes from the card. The CAs stay in the sealed store, whose key the card unwraps
/// (`CardStoreKeyProtector`); a user's key is in the store, or on the user's own card (9a) when
/// users are on cards.
public struct CardKeys: KeysRole {
    let records: SoftToken
    let binding: CardBinding
    let userCards: UserCards

    public init(records: SoftToken, binding: CardBinding, userCards: UserCards = UserCards()) {
        self.records = records
        self.binding = binding
        self.userCards = userCards
    }

    public func certificate(named name: String) async throws(TokenError) -> TokenCertificate {
        guard name == TokenKey.audit.rawValue else { return try await records.certificate(named: name) }
        return .x509(try await binding.certificate("card-audit", slot: .signature, purpose: .audit, records: records))
    }

    public func signAuditCheckpoint(_ checkpoint: [UInt8]) async throws(TokenError) -> [UInt8] {
        try await binding.signWithCard(Array(SHA256.hash(data: AuditCheckpoint.signingDomain + checkpoint)))
    }

    /// A user whose key is on their card signs there, on the PIN their login verified; the card
    /// must be the one the user CA certified (its serial, and the signature checked with the key).
    public func sign(asUser user: String, digest: [UInt8]) async throws(TokenError) -> [UInt8] {
        guard let card = try await records.userCard(user) else {
            return try await records.sign(asUser: user, digest: digest)
        }
        guard digest.count == SHA256.byteCount else {
            throw TokenError(
                .invalidArgument,
                "the digest to sign must be a SHA-256 hash (32 bytes), got \(digest.count)"
            )
        }
        let hash = SHA256.hash(data: SigningContext.tokenSignMessage(digest: digest))
        let der: [UInt8]
        do {
            der = try await userCards.onCard(serial: card.serial) { client throws(CardError) -> [UInt8]? in
                try await client.signWithAuthenticationKey(serial: card.serial, hash: Array(hash))
            }
        } catch  where error.kind == .refused(0x6982) {
            throw TokenError(
                .unavailable,
                "\(user)'s card has forgotten the PIN (it was reset or taken out): log in again"
            )
        } catch {
            throw CardBinding.tokenError(error)
        }
        guard let signature = try? P256.Signing.ECDSASignature(derRepresentation: der),
            card.publicKey.isValidSignature(signature, for: hash)
        else {
            throw TokenError(.unavailable, "card \(card.serial)'s 9a key is not the one certified for \(user): refused")
        }
        return der
    }

    public func random(count: Int) async throws(TokenError) -> [UInt8] {
        guard (1...1024).contains(count) else {
            throw TokenError(.invalidArgument, "random bytes: ask for 1-1024, not \(count)")
        }
        do {
            return try await binding.client.random(count: count, managementKey: .tripleDES)
        } catch {
            throw CardBinding.tokenError(error)
        }
    }
}
