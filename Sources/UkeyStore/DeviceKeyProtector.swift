import Crypto

/// The soft token's protector: the store key is sealed (AES-256-GCM) under a random device key in
/// `STATE/device.key` (0600).
///
/// What this protects against, plainly: theft or offline modification of the sealed store alone.
/// It does not protect against root on a running host, who can read `device.key` as the daemon
/// does; the tpm backend seals the store key to a TPM for that.
///
/// `device.key` format: `UKEYDK01`, the 32 key bytes, then the first 8 bytes of SHA-256 over both,
/// so a damaged key file is reported as such rather than as a damaged store.
public struct DeviceKeyProtector: StoreKeyProtector {
    public let name = "device-key"
    public let path: String
    static let magic = Array("UKEYDK01".utf8)
    static let associatedData = Array("ukey store key v1".utf8)

    public init(stateDirectory: String) {
        self.path = stateDirectory + "/device.key"
    }

    public func wrap(_ storeKey: SymmetricKey) throws(StoreError) -> [UInt8] {
        let deviceKey = try loadOrCreate()
        do {
            let box = try storeKey.withUnsafeBytes { raw in
                try AES.GCM.seal(Array(raw), using: deviceKey, authenticating: Self.associatedData)
            }
            return Array(box.combined!)
        } catch {
            throw StoreError(.io, path: path, "cannot seal the store key: \(error)")
        }
    }

    public func unwrap(_ blob: [UInt8]) throws(StoreError) -> SymmetricKey {
        let deviceKey = try load()
        do {
            let box = try AES.GCM.SealedBox(combined: blob)
            let raw = try AES.GCM.open(box, using: deviceKey, authenticating: Self.associatedData)
            return SymmetricKey(data: raw)
        } catch {
            throw StoreError(.unwrapFailed, path: path, "the store key does not unseal with \(path)")
        }
    }

    func load() throws(StoreError) -> SymmetricKey {
        try StatePermissions.checkFile(path)
        let bytes = try AtomicFile.read(path, limit: 4096)
        guard bytes.count == 48, Array(bytes[0..<8]) == Self.magic,
            Array(SHA256.hash(data: bytes[0..<40]).prefix(8)) == Array(bytes[40..<48])
        else {
            throw StoreError(.integrity, path: path, "integrity check failed: the device key file is damaged")
        }
        return SymmetricKey(data: bytes[8..<40])
    }

    private func loadOrCreate() throws(StoreError) -> SymmetricKey {
        do {
            return try load()
        } catch  where error.code == .notFound {
            let key = SymmetricKey(size: .bits256)
            var bytes = Self.magic
            key.withUnsafeBytes { bytes += $0 }
            bytes += SHA256.hash(data: bytes).prefix(8)
            try AtomicFile.write(bytes, to: path, mode: 0o600)
            // Zero our copy of the key bytes; the SymmetricKey itself is zeroed by swift-crypto on release.
            for index in bytes.indices { bytes[index] = 0 }
            return key
        }
    }
}
