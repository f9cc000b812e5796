import Crypto

/// What keeps the store key (the AES-256 key that seals every record) from whoever copies the
/// state directory: a device key file for the soft token, a TPM-sealed object for the tpm backend.
/// The store records the protector's name, so a store is never opened with the wrong kind.
public protocol StoreKeyProtector: Sendable {
    /// A short stable name written into the store header ("device-key", "tpm").
    var name: String { get }
    /// Wraps a new store key; the blob is kept in the store header.
    func wrap(_ storeKey: SymmetricKey) throws(StoreError) -> [UInt8]
    /// Recovers the store key from its blob. A blob that does not authenticate is `.unwrapFailed`;
    /// a damaged protector file (say, `device.key`) is `.integrity` naming that file.
    func unwrap(_ blob: [UInt8]) throws(StoreError) -> SymmetricKey
    /// The monotonic counter the store binds itself to, if the protector has one (the TPM's).
    var counter: (any MonotonicCounter)? { get }
}
