import UkeyStore
import UkeyToken
import X509

/// Opens the tpm backend: the soft token's store (its key sealed to the TPM when the keys role is
/// the TPM's), then the one TPM connection the daemon keeps. The store's protector connects on its
/// own and is done before that: swtpm serves one client at a time.
public struct TPMBackedTokenProvider: TrustedRootProvider {
    public let tcti: String
    public let roles: TPMBackedToken.Roles
    public let configuration: SoftToken.Configuration

    public init(tcti: String, roles: TPMBackedToken.Roles, stateDirectory: String) {
        self.tcti = tcti
        self.roles = roles
        var configuration = SoftToken.Configuration(stateDirectory: stateDirectory)
        if roles.keys { configuration.protector = TPMStoreKeyProtector(tcti: tcti) }
        self.configuration = configuration
    }

    public var backendName: String { "tpm" }

    public func isInitialized() -> Bool {
        SoftToken.isInitialized(stateDirectory: configuration.stateDirectory)
    }

    public func initialize(soPIN: String, policySigner: Certificate, bootID: String) throws(TokenError) -> any TrustedRoot {
        let soft = try SoftToken.initialize(configuration, soPIN: soPIN, policySigner: policySigner, bootID: bootID)
        return TPMBackedToken(soft: soft, tpm: try connect(), roles: roles)
    }

    public func open(bootID: String) throws(TokenError) -> any TrustedRoot {
        let soft = try SoftToken.open(configuration, bootID: bootID)
        return TPMBackedToken(soft: soft, tpm: try connect(), roles: roles)
    }

    private func connect() throws(TokenError) -> TPM {
        do {
            return try TPM(tcti: tcti)
        } catch {
            throw TokenError(.unavailable, "cannot reach the TPM at \(tcti): \(error)")
        }
    }
}
