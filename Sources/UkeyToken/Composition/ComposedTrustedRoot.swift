import UkeyCore
import X509

/// A trusted root composed of one backend per role, as `TokenComposition` chose them, over the
/// soft token's sealed store, which keeps what every composition has: users' names, roles and
/// certificates, the daemon's records, the serial and the boot counter.
///
/// It forwards nothing: each role is handed out as itself, so a new backend is a new role type
/// and a case in the builder, never another whole-token wrapper.
public struct ComposedTrustedRoot: TrustedRoot {
    public let composition: TokenComposition
    let records: SoftToken
    let registersRole: any RegistersRole
    let keysRole: any KeysRole
    let usersRole: any UsersRole
    public let remoteAttestation: (any RemoteAttestationRole)?
    /// The public keys of ukeyd's own hardware (its keys card's 9a, 9c and 9d): no user's
    /// certificate may name one, since whoever holds that card's PIN makes 9c sign quotes and
    /// audit checkpoints.
    let ownHardwareKeys: [Certificate.PublicKey]

    public init(
        composition: TokenComposition,
        records: SoftToken,
        registers: any RegistersRole,
        keys: any KeysRole,
        users: any UsersRole,
        remoteAttestation: (any RemoteAttestationRole)? = nil,
        ownHardwareKeys: [Certificate.PublicKey] = []
    ) {
        self.remoteAttestation = remoteAttestation
        self.composition = composition
        self.records = records
        self.registersRole = registers
        self.keysRole = keys
        self.usersRole = users
        self.ownHardwareKeys = ownHardwareKeys
    }

    public var registers: any RegistersRole { registersRole }
    public var keys: any KeysRole { keysRole }
    public var users: any UsersRole { usersRole }

    /// Every backend keeps the policy signer with the token's records.
    public func policySigner() async throws(TokenError) -> PolicySigner {
        try await records.policySigner()
    }

    public func certificate(named name: String) async throws(TokenError) -> TokenCertificate {
        if name == TokenKey.attestation.rawValue { return try await registersRole.attestationCertificate() }
        return try await keysRole.certificate(named: name)
    }

    // MARK: records

    public var serial: String { get async { await records.serial } }
    public var keyAlgorithm: TokenAlgorithm { records.keyAlgorithm }
    public var bootCounter: UInt64 { get async { await records.bootCounter } }
    public func addUserReturningCertificate(
        _ name: String,
        pin: String,
        roles: [String]
    ) async throws(TokenError) -> TokenCertificate {
        try await usersRole.addUserReturningCertificate(name, pin: pin, roles: roles)
    }
    public func issueCertificate(user: String, csrPEM: String?) async throws(TokenError) -> TokenCertificate {
        if let csrPEM, ownHardwareKeys.contains(try IdentityCA.publicKey(fromCSR: csrPEM)) {
            throw TokenError(
                .invalidCSR,
                "the CSR's key is on ukeyd's keys card (whose 9c key signs quotes and audit checkpoints for whoever has its PIN): it cannot be \(user)'s; give \(user) a card of their own"
            )
        }
        return try await records.issueCertificate(user: user, csrPEM: csrPEM)
    }
    public func userNames() async -> [String] { await records.userNames() }
    public func issueVTPMCertificate(_ request: VTPMCertificateRequest) async throws(TokenError) -> Certificate {
        try await records.issueVTPMCertificate(request)
    }
    public func roles(of user: String) async throws(TokenError) -> [String] { try await records.roles(of: user) }
    public func daemonRecord(_ name: String) async -> [UInt8]? { await records.daemonRecord(name) }
    public func setDaemonRecords(_ records: [String: [UInt8]?]) async throws(TokenError) {
        try await self.records.setDaemonRecords(records)
    }
}
