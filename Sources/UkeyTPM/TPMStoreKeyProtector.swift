import Crypto
import UkeyStore

/// The tpm backend's store-key protector: the store key is sealed to the TPM, so a copy of the
/// state directory on another machine (or after the TPM is cleared) opens nothing.
///
/// It opens a short connection of its own for each wrap or unwrap: stores are opened at start,
/// before the backend's `TPM` actor connects (swtpm serves one client at a time; the kernel's
/// resource manager, `device:/dev/tpmrm0`, serves many).
public struct TPMStoreKeyProtector: StoreKeyProtector {
    public let name = "tpm"
    public let tcti: String

    public init(tcti: String) {
        self.tcti = tcti
    }

    public func wrap(_ storeKey: SymmetricKey) throws(StoreError) -> [UInt8] {
        do {
            let context = try TPMContext(tcti: tcti)
            var raw = storeKey.withUnsafeBytes { Array($0) }
            defer { raw.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
            return try context.seal(raw)
        } catch {
            throw StoreError(.io, path: "TPM \(tcti)", "cannot seal the store key to the TPM: \(error)")
        }
    }

    public func unwrap(_ blob: [UInt8]) throws(StoreError) -> SymmetricKey {
        let context: TPMContext
        do {
            context = try TPMContext(tcti: tcti)
        } catch {
            throw StoreError(.io, path: "TPM \(tcti)", "cannot reach the TPM: \(error)")
        }
        do {
            var raw = try context.unseal(blob)
            defer { raw.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
            guard raw.count == 32 else {
                throw TPMError(local: "the unsealed store key has \(raw.count) bytes, not 32", "Unseal")
            }
            return SymmetricKey(data: raw)
        } catch {
            // Another TPM, a cleared TPM, or a damaged blob: the key is not this TPM's to give.
            throw StoreError(.unwrapFailed, path: "TPM \(tcti)", "\(error)")
        }
    }
}
