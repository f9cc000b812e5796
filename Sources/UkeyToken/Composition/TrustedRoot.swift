import X509

/// Everything ukeyd needs of a trusted root: its three roles, each used as itself (a service
/// takes the role it needs: the boot chain `registers`, signing `keys`, logins `users`), plus
/// what crosses them (certificates by name, provisioning) and a few records of the daemon's own
/// (the loaded policy's version and digest, the mode) sealed with the token's state. The daemon
/// depends on this protocol only; `ukeyd`'s builder composes the concrete roles.
public protocol TrustedRoot: Sendable {
    /// Which backend serves each role.
    var composition: TokenComposition { get }
    var registers: any RegistersRole { get }
    var keys: any KeysRole { get }
    var users: any UsersRole { get }
    /// The TPM's identity for a remote verifier; nil unless the registers are on a TPM.
    var remoteAttestation: (any RemoteAttestationRole)? { get }
    /// A certificate by name: the attestation key's is the registers' (their quotes are what it
    /// certifies); every other is the keys role's.
    func certificate(named name: String) async throws(TokenError) -> TokenCertificate
    var serial: String { get async }
    /// The algorithm of the token's keys and its users' keys (SM2 only for a token whose keys are
    /// all in its own store).
    var keyAlgorithm: TokenAlgorithm { get }
    /// Boots since initialisation.
    var bootCounter: UInt64 { get async }

    /// The enrolled policy signer (its key P-256 or SM2).
    func policySigner() async throws(TokenError) -> PolicySigner
    func addUserReturningCertificate(
        _ name: String,
        pin: String,
        roles: [String]
    ) async throws(TokenError) -> TokenCertificate
    func issueCertificate(user: String, csrPEM: String?) async throws(TokenError) -> TokenCertificate
    func userNames() async -> [String]
    /// Certifies the endorsement key of a vTPM ukeyd runs, with the vTPM sub-CA (made at the
    /// first one on a token initialised before it existed).
    func issueVTPMCertificate(_ request: VTPMCertificateRequest) async throws(TokenError) -> Certificate
    func roles(of user: String) async throws(TokenError) -> [String]

    /// A daemon record sealed with the token's state (names are prefixed "daemon.").
    func daemonRecord(_ name: String) async -> [UInt8]?
    /// Writes daemon records durably, all or none (nil removes).
    func setDaemonRecords(_ records: [String: [UInt8]?]) async throws(TokenError)
}

extension TrustedRoot {
    public var remoteAttestation: (any RemoteAttestationRole)? { nil }
    /// "soft", or the hardware the token uses.
    public var backendName: String { composition.summary }
    /// The backend serving each role: "registers", "keys", "users", "store".
    public var roleBackends: [String: String] { composition.roleNames }
}

/// Creates or opens the trusted root; given to the daemon by `ukeyd`'s builder.
public protocol TrustedRootProvider: Sendable {
    var composition: TokenComposition { get }
    func isInitialized() -> Bool
    func initialize(
        soPIN: String,
        policySigner: PolicySigner,
        bootID: String
    ) async throws(TokenError) -> any TrustedRoot
    func open(bootID: String) throws(TokenError) -> any TrustedRoot
}

extension TrustedRootProvider {
    public var backendName: String { composition.summary }
}
