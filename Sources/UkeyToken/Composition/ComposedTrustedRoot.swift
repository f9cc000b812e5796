import UkeyCore
import X509

/// A trusted root composed of one backend per role, as `TokenComposition` chose them, over the
/// soft token's sealed store, which keeps what every composition has: users' names, roles and
/// certificates, the daemon's records, the serial and the boot counter.
///
/// It only routes: each member goes to the role that owns it, so a new backend is a new role
/// type and a case in the builder, never another whole-token wrapper.
public struct ComposedTrustedRoot: TrustedRoot {
    public let composition: TokenComposition
    let records: SoftToken
    let registersRole: any RegistersRole
    let keysRole: any KeysRole
    let usersRole: any UsersRole
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
        ownHardwareKeys: [Certificate.PublicKey] = []
    ) {
        self.composition = composition
        self.records = records
        self.registersRole = registers
        self.keysRole = keys
        self.usersRole = users
        self.ownHardwareKeys = ownHardwareKeys
    }

    // MARK: registers

    public func extend(register: Int, digest: Digest) async throws(TokenError) {
        try await registersRole.extend(register: register, digest: digest)
    }
    public func extend(_ batch: [(register: Int, digest: Digest)]) async -> (done: Int, failure: TokenError?) {
        await registersRole.extend(batch)
    }
    public func read(register: Int, bank: HashAlgorithm) async throws(TokenError) -> Digest {
        try await registersRole.read(register: register, bank: bank)
    }
    public func reset(bootID: String) async throws(TokenError) -> UInt64 {
        try await registersRole.reset(bootID: bootID)
    }
    public func quote(
        nonce: [UInt8],
        registers: [Int],
        eventLog: Digest,
        bank: HashAlgorithm
    ) async throws(TokenError) -> SignedQuote {
        try await registersRole.quote(nonce: nonce, registers: registers, eventLog: eventLog, bank: bank)
    }
    public func attestationCertificate() async throws(TokenError) -> TokenCertificate {
        try await registersRole.attestationCertificate()
    }
    public var usableRegisters: Set<Int> { registersRole.usableRegisters }
    public var registersPersist: Bool { registersRole.registersPersist }
    public var banks: [HashAlgorithm] { registersRole.banks }
    public func missingBank(_ algorithm: HashAlgorithm) async -> String { await registersRole.missingBank(algorithm) }

    // MARK: keys

    /// Every backend keeps the policy signer with the token's records.
    public func policySigner() async throws(TokenError) -> PolicySigner {
        try await records.policySigner()
    }

    /// The attestation certificate is the registers' (their quotes are what it certifies); every
    /// other certificate is the keys role's.
    public func certificate(named name: String) async throws(TokenError) -> TokenCertificate {
        if name == TokenKey.attestation.rawValue { return try await registersRole.attestationCertificate() }
        return try await keysRole.certificate(named: name)
    }
    public func signAuditCheckpoint(_ checkpoint: [UInt8]) async throws(TokenError) -> [UInt8] {
        try await keysRole.signAuditCheckpoint(checkpoint)
    }
    public func sign(asUser user: String, digest: [UInt8]) async throws(TokenError) -> [UInt8] {
        try await keysRole.sign(asUser: user, digest: digest)
    }
    public func random(count: Int) async throws(TokenError) -> [UInt8] {
        try await keysRole.random(count: count)
    }

    // MARK: users

    public func addUser(_ name: String, pin: String, roles: [String]) async throws(TokenError) {
        try await usersRole.addUser(name, pin: pin, roles: roles)
    }
    public func verifyPIN(user: String, pin: String) async throws(TokenError) -> PinVerdict {
        try await usersRole.verifyPIN(user: user, pin: pin)
    }
    public func unblockPIN(user: String, soPIN: String, newPIN: String) async throws(TokenError) -> PinVerdict {
        try await usersRole.unblockPIN(user: user, soPIN: soPIN, newPIN: newPIN)
    }
    public func pinStatus(user: String) async throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        try await usersRole.pinStatus(user: user)
    }
    public func soPINStatus() async throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        try await usersRole.soPINStatus()
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
    public func roles(of user: String) async throws(TokenError) -> [String] { try await records.roles(of: user) }
    public func daemonRecord(_ name: String) async -> [UInt8]? { await records.daemonRecord(name) }
    public func setDaemonRecords(_ records: [String: [UInt8]?]) async throws(TokenError) {
        try await self.records.setDaemonRecords(records)
    }
}
