import UkeyStore
import UkeyToken
import X509

/// Opens the tpm backend: connects to the TPM (the one connection the daemon keeps), then the
/// soft token's store, whose key is sealed to the TPM when the keys role is the TPM's; a token
/// initialised with keys = tpm also has its CA keys (root and sub-CAs) in the TPM.
public struct TPMBackedTokenProvider: TrustedRootProvider {
    public let tcti: String
    public let roles: TPMBackedToken.Roles
    public let configuration: SoftToken.Configuration

    public init(tcti: String, roles: TPMBackedToken.Roles, stateDirectory: String) {
        self.tcti = tcti
        self.roles = roles
        self.configuration = SoftToken.Configuration(stateDirectory: stateDirectory)
    }

    public var backendName: String { "tpm" }

    public func isInitialized() -> Bool {
        SoftToken.isInitialized(stateDirectory: configuration.stateDirectory)
    }

    public func initialize(soPIN: String, policySigner: Certificate, bootID: String) async throws(TokenError) -> any TrustedRoot {
        let tpm = try connect()
        let soft = try await SoftToken.initialize(try configuration(on: tpm), soPIN: soPIN, policySigner: policySigner, bootID: bootID)
        return TPMBackedToken(soft: soft, tpm: tpm, roles: roles)
    }

    public func open(bootID: String) throws(TokenError) -> any TrustedRoot {
        let tpm = try connect()
        let soft = try SoftToken.open(try configuration(on: tpm), bootID: bootID)
        return TPMBackedToken(soft: soft, tpm: tpm, roles: roles)
    }

    /// The soft token's configuration with the keys role on `tpm`: the store key sealed to it
    /// and the CAs' keys in it.
    private func configuration(on tpm: TPM) throws(TokenError) -> SoftToken.Configuration {
        var configuration = configuration
        if roles.keys {
            configuration.protector = TPMStoreKeyProtector(tpm: tpm)
            for (authority, name) in [(CertificateAuthorityKey.root, TokenKey.rootCA), (.tokenKeys, .tokenKeysCA), (.users, .userCA)] {
                configuration.certificateAuthorityKeys[name] = Certificate.PrivateKey(try TPMCertificateAuthorityKey(tpm: tpm, authority: authority))
            }
        }
        return configuration
    }

    private func connect() throws(TokenError) -> TPM {
        do {
            return try TPM(tcti: tcti)
        } catch {
            throw TokenError(.unavailable, "cannot reach the TPM at \(tcti): \(error)")
        }
    }
}
