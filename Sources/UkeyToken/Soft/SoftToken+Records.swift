import X509

/// The records every composition keeps in the soft token's sealed store.
extension SoftToken {
    public func daemonRecord(_ name: String) -> [UInt8]? {
        store["daemon.\(name)"]
    }

    public func setDaemonRecords(_ records: [String: [UInt8]?]) throws(TokenError) {
        try commit(Dictionary(uniqueKeysWithValues: records.map { ("daemon.\($0.key)", $0.value) }))
    }
}
