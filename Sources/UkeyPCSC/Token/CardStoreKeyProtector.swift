import Crypto
import UkeyPIV
import UkeyStore
import UkeyToken

/// The sealed store's key wrapped to the card's key-management key (9d), as `systemd-cryptenroll
/// --pkcs11` does with EC keys: an ephemeral P-256 key agrees a secret with the card's public key;
/// HKDF-SHA256 of it (salted with both public keys) encrypts the store key with AES-GCM. Only the
/// card can agree the same secret again, after its PIN: ukeyd cannot open its store without it.
public struct CardStoreKeyProtector: StoreKeyProtector {
    public let name = "pcsc"
    let binding: CardBinding
    static let info = Array("ukey store key, wrapped to a PIV card's 9d key, v1".utf8)

    public init(binding: CardBinding) {
        self.binding = binding
    }

    public var counter: (any MonotonicCounter)? { nil }

    public func wrap(_ storeKey: SymmetricKey) throws(StoreError) -> [UInt8] {
        let ephemeral = P256.KeyAgreement.PrivateKey()
        let cardKey: P256.KeyAgreement.PublicKey
        do {
            cardKey = try P256.KeyAgreement.PublicKey(
                x963Representation: try binding.publicKey(.keyManagement).x963Representation
            )
            let secret = try ephemeral.sharedSecretFromKeyAgreement(with: cardKey)
            let ephemeralPoint = Array(ephemeral.publicKey.x963Representation)
            let sealed = try AES.GCM.seal(
                storeKey.withUnsafeBytes { Array($0) },
                using: Self.wrappingKey(
                    secret.withUnsafeBytes { Array($0) },
                    ephemeralPoint,
                    Array(cardKey.x963Representation)
                )
            )
            guard let combined = sealed.combined else {
                throw StoreError(.io, path: "card", "AES-GCM gave no combined form")
            }
            return ephemeralPoint + Array(combined)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, path: "card", "cannot wrap the store key to the card: \(error)")
        }
    }

    public func unwrap(_ blob: [UInt8]) throws(StoreError) -> SymmetricKey {
        guard blob.count > 65 + 28 else {
            throw StoreError(.unwrapFailed, path: "card", "the wrapped store key is too short")
        }
        let ephemeralPoint = Array(blob.prefix(65))
        let secret: [UInt8]
        do {
            secret = try binding.client.agreeBlocking(with: ephemeralPoint, slot: .keyManagement, pin: binding.pin)
        } catch {
            throw StoreError(
                error.kind == .unavailable ? .unavailable : .unwrapFailed,
                path: "card",
                "the card cannot unwrap the store key: \(error)"
            )
        }
        do {
            let cardPoint = Array(try binding.publicKey(.keyManagement).x963Representation)
            let box = try AES.GCM.SealedBox(combined: blob.dropFirst(65))
            return SymmetricKey(data: try AES.GCM.open(box, using: Self.wrappingKey(secret, ephemeralPoint, cardPoint)))
        } catch {
            throw StoreError(
                .unwrapFailed,
                path: "card",
                "the store key was not wrapped to this card (another card, or a damaged store)"
            )
        }
    }

    static func wrappingKey(_ secret: [UInt8], _ ephemeralPoint: [UInt8], _ cardPoint: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: secret),
            salt: ephemeralPoint + cardPoint,
            info: info,
            outputByteCount: 32
        )
    }
}
