import Crypto
import UkeyStore

/// The tpm backend's store-key protector: the store key is sealed to the TPM, so a copy of the
/// state directory on another machine (or after the TPM is cleared) opens nothing.
///
/// Given a TCTI, it opens a short connection of its own for each wrap or unwrap; given the
/// daemon's `TPM`, it uses that one connection (swtpm serves one client at a time, so a second
/// connection would wait for the first to close; the kernel's resource manager serves many).
public struct TPMStoreKeyProtector: StoreKeyProtector {
    public let name = "tpm"
    public let tcti: String
    private let tpm: TPM?
    private let secret: TPMObjectSecret

    public init(tcti: String, secret: TPMObjectSecret) {
        self.tcti = tcti
        self.tpm = nil
        self.secret = secret
    }

    public init(tpm: TPM) {
        self.tcti = tpm.tcti
        self.tpm = tpm
        self.secret = tpm.secret
    }

    /// The TPM's NV counter, with the daemon's TPM connection: the store is bound to it, so an
    /// older copy of the state directory does not open (`SealedStore`).
    public var counter: (any MonotonicCounter)? {
        tpm.map { TPMCounter(tpm: $0) }
    }

    public func wrap(_ storeKey: SymmetricKey) throws(StoreError) -> [UInt8] {
        let raw = storeKey.withUnsafeBytes { Array($0) }
        do {
            if let tpm { return try tpm.blocking { tpm throws(TPMError) in try tpm.seal(raw) } }
            return try TPMContext(tcti: tcti, secret: secret).seal(raw)
        } catch {
            throw StoreError(.io, path: "TPM \(tcti)", "cannot seal the store key to the TPM: \(error)")
        }
    }

    public func unwrap(_ blob: [UInt8]) throws(StoreError) -> SymmetricKey {
        var raw: [UInt8]
        do {
            if let tpm {
                raw = try tpm.blocking { tpm throws(TPMError) in try tpm.unseal(blob) }
            } else {
                let context: TPMContext
                do {
                    context = try TPMContext(tcti: tcti, secret: secret)
                } catch {
                    throw StoreError(.io, path: "TPM \(tcti)", "cannot reach the TPM: \(error)")
                }
                raw = try context.unseal(blob)
            }
        } catch let error as StoreError {
            throw error
        } catch let error as TPMError where error.isTransport {
            throw StoreError(.io, path: "TPM \(tcti)", "cannot reach the TPM: \(error)")
        } catch {
            // Another TPM, a cleared TPM, or a damaged blob: the key is not this TPM's to give.
            throw StoreError(.unwrapFailed, path: "TPM \(tcti)", "\(error)")
        }
        defer { raw.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        guard raw.count == 32 else {
            throw StoreError(
                .unwrapFailed,
                path: "TPM \(tcti)",
                "the unsealed store key has \(raw.count) bytes, not 32"
            )
        }
        return SymmetricKey(data: raw)
    }
}

/// ukey's NV counter in the TPM, as the store's monotonic counter.
struct TPMCounter: MonotonicCounter {
    let tpm: TPM

    func value() throws(StoreError) -> UInt64 {
        do {
            return try tpm.blocking { tpm throws(TPMError) in try tpm.counterValue() }
        } catch {
            throw StoreError(.unavailable, path: "TPM \(tpm.tcti)", "cannot read the TPM's monotonic counter: \(error)")
        }
    }

    func increment() throws(StoreError) -> UInt64 {
        do {
            return try tpm.blocking { tpm throws(TPMError) in try tpm.incrementCounter() }
        } catch {
            throw StoreError(
                .unavailable,
                path: "TPM \(tpm.tcti)",
                "cannot advance the TPM's monotonic counter: \(error)"
            )
        }
    }
}
