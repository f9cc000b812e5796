import X509

extension SoftToken: TrustedRoot {
    public nonisolated var backendName: String { Self.backendName }
    public nonisolated var roleBackends: [String: String] {
        ["registers": Self.backendName, "keys": configuration.protector.name == "tpm" ? "tpm" : Self.backendName, "users": Self.backendName]
    }

    public func daemonRecord(_ name: String) -> [UInt8]? {
        store["daemon.\(name)"]
    }

    public func setDaemonRecords(_ records: [String: [UInt8]?]) throws(TokenError) {
        try commit(Dictionary(uniqueKeysWithValues: records.map { ("daemon.\($0.key)", $0.value) }))
    }
}

/// The soft backend's provider: its state in one directory.
public struct SoftTokenProvider: TrustedRootProvider {
    public let configuration: SoftToken.Configuration
    public var backendName: String { SoftToken.backendName }

    public init(configuration: SoftToken.Configuration) {
        self.configuration = configuration
    }

    public func isInitialized() -> Bool {
        SoftToken.isInitialized(stateDirectory: configuration.stateDirectory)
    }

    public func initialize(soPIN: String, policySigner: Certificate, bootID: String) async throws(TokenError) -> any TrustedRoot {
        try await SoftToken.initialize(configuration, soPIN: soPIN, policySigner: policySigner, bootID: bootID)
    }

    public func open(bootID: String) throws(TokenError) -> any TrustedRoot {
        try SoftToken.open(configuration, bootID: bootID)
    }
}
