import X509

/// The records every composition keeps in the soft token's sealed store.
extension SoftToken {
    public func daemonRecord(_ name: String) -> [UInt8]? {
        store["daemon.\(name)"]
    }

    public func setDaemonRecords(_ records: [String: [UInt8]?]) throws(TokenError) {
        try commit(Dictionary(uniqueKeysWithValues: records.map { ("daemon.\($0.key)", $0.value) }))
    }

    /// The soft token serving every role itself, its store key in `device.key` or wherever
    /// `configuration.protector` keeps it.
    public nonisolated func composedAlone(store: TokenComposition.Store = .deviceKey) -> ComposedTrustedRoot {
        ComposedTrustedRoot(
            composition: TokenComposition(registers: .soft, keys: .soft, users: .soft, store: store),
            records: self, registers: self, keys: self, users: self
        )
    }
}
