import Crypto
import Synchronization
import UkeyCore
import UkeyToken
import X509

/// The tpm backend (architecture.md section 3): the roles the configuration gives the TPM are served by
/// it, the rest by the soft token, whose sealed store keeps the records (users, PINs, policy).
///
/// - registers on the TPM: measurements extend real SHA-256 PCRs (8-16 and 23; 0-7 are the
///   firmware's, 17-22 need a locality ukeyd does not have) and quotes are TPM2_Quote by the
///   TPM's attestation key, certified by the token's root CA.
/// - keys on the TPM: the store key is sealed to the TPM (see `TPMStoreKeyProtector`), audit
///   checkpoints are signed by a TPM-resident key, random bytes come from TPM2_GetRandom, and the
///   three CA keys (root, token-keys, users) are TPM primaries derived from fixed templates,
///   which sign certificates through `TPMCertificateAuthorityKey`; the store keeps no CA key.
///   Users' own keys stay in the sealed store.
public struct TPMBackedToken: TrustedRoot {
    public struct Roles: Sendable, Hashable {
        public var registers: Bool
        public var keys: Bool
        public init(registers: Bool, keys: Bool) {
            self.registers = registers
            self.keys = keys
        }
    }

    /// The PCRs a policy may name on the TPM: the OS range 8-15, debug 16 and application 23.
    public static let usablePCRs: Set<Int> = Set(8...16).union([23])

    let soft: SoftToken
    let tpm: TPM
    let roles: Roles
    /// Certificates of the TPM's keys as PEM, by name, with the key point they certify.
    let certificates = CertificateCache()

    public init(soft: SoftToken, tpm: TPM, roles: Roles) {
        self.soft = soft
        self.tpm = tpm
        self.roles = roles
    }

    public var backendName: String { "tpm" }
    public var roleBackends: [String: String] {
        ["registers": roles.registers ? "tpm" : "soft", "keys": roles.keys ? "tpm" : "soft", "users": "soft"]
    }
    public var serial: String { get async { await soft.serial } }
    public var bootCounter: UInt64 { get async { await soft.bootCounter } }

    // MARK: registers

    public var usableRegisters: Set<Int> { roles.registers ? Self.usablePCRs : soft.usableRegisters }
    public var registersPersist: Bool { roles.registers }

    public func extend(register: Int, digest: UkeyCore.Digest) async throws(TokenError) {
        guard roles.registers else { return try await soft.extend(register: register, digest: digest) }
        guard Self.usablePCRs.contains(register) else {
            throw TokenError(.invalidArgument, "PCR \(register) is not ukey's to extend (it may use 8-16 and 23)")
        }
        try await tpmCall { () async throws(TPMError) in try await tpm.extend(pcr: register, sha256: digest.measurement(for: .sha256)) }
    }

    public func extend(_ batch: [(register: Int, digest: UkeyCore.Digest)]) async -> (done: Int, failure: TokenError?) {
        guard roles.registers else { return await soft.extend(batch) }
        // Registers ukey may not extend end the batch there, like a failed command.
        let usable = batch.prefix { Self.usablePCRs.contains($0.register) }
        let (done, failure) = await tpm.extend(usable.map { ($0.register, $0.digest.measurement(for: .sha256)) })
        if let failure {
            return (done, tokenError(failure))
        }
        if usable.count < batch.count {
            return (done, TokenError(.invalidArgument, "PCR \(batch[usable.count].register) is not ukey's to extend (it may use 8-16 and 23)"))
        }
        return (done, nil)
    }

    public func read(register: Int, bank: HashAlgorithm) async throws(TokenError) -> UkeyCore.Digest {
        guard roles.registers else { return try await soft.read(register: register, bank: bank) }
        guard bank == .sha256 else { throw TokenError(.invalidArgument, "ukey reads the TPM's SHA-256 bank only") }
        guard (0...23).contains(register) else { throw TokenError(.invalidArgument, "PCR \(register) does not exist (0-23)") }
        let bytes = try await tpmCall { () async throws(TPMError) in try await tpm.read(pcr: register) }
        do {
            return try UkeyCore.Digest(algorithm: .sha256, bytes: bytes)
        } catch {
            throw TokenError(.unavailable, "the TPM returned a malformed PCR value")
        }
    }

    /// A new boot session. PCRs reset only when the host (and so the TPM) restarts: the boot
    /// counter and boot id move on, and the daemon keeps the earlier measurements in the event
    /// log, which therefore still replays to the PCRs.
    public func reset(bootID: String) async throws(TokenError) -> UInt64 {
        try await soft.reset(bootID: bootID)
    }

    /// A TPM2_Quote ("tpm2" format): TPMS_ATTEST, the TPMT_SIGNATURE, the AK's certificate from
    /// the root CA and the AK as a PEM public key. The event log is bound by replay, not by digest.
    public func quote(nonce: [UInt8], registers: [Int], eventLog: UkeyCore.Digest) async throws(TokenError) -> SignedQuote {
        guard roles.registers else { return try await soft.quote(nonce: nonce, registers: registers, eventLog: eventLog) }
        try UkeyQuote.validate(nonce: nonce, bootID: "tpm", registers: registers)
        let quote = try await tpmCall { () async throws(TPMError) in try await tpm.quote(nonce: nonce, pcrs: registers) }
        let (certificate, keyPEM) = try await hardwareCertificate("tpm-attestation", point: quote.attestationKey)
        return SignedQuote(format: "tpm2", quote: quote.attest, signature: quote.signature, certificatePEM: certificate, attestationKeyPEM: keyPEM)
    }

    // MARK: keys

    public func certificate(named name: String) async throws(TokenError) -> Certificate {
        let hardware: String? =
            switch name {
            case TokenKey.attestation.rawValue where roles.registers: "tpm-attestation"
            case TokenKey.audit.rawValue where roles.keys: "tpm-audit"
            default: nil
            }
        guard let hardware else { return try await soft.certificate(named: name) }
        // The TPM derives the same key from the same template, so a certificate issued once
        // stands: a TPM that is away for a while does not stop audit verification.
        if let known = certificates.lookup(hardware) { return try Self.parse(known.certificate, name) }
        let point: [UInt8]
        do {
            point = try await tpmCall { () async throws(TPMError) in
                hardware == "tpm-audit" ? try await tpm.auditKey() : try await tpm.attestationKey()
            }
        } catch {
            if let stored = await soft.storedCertificate(named: hardware) { return stored }
            throw error
        }
        return try Self.parse(try await hardwareCertificate(hardware, point: point).certificate, name)
    }

    static func parse(_ pem: String, _ name: String) throws(TokenError) -> Certificate {
        do {
            return try Certificate(pemEncoded: pem)
        } catch {
            throw TokenError(.crypto, "the \(name) certificate does not parse: \(error)")
        }
    }

    public func signAuditCheckpoint(_ checkpoint: [UInt8]) async throws(TokenError) -> [UInt8] {
        guard roles.keys else { return try await soft.signAuditCheckpoint(checkpoint) }
        let digest = Array(SHA256.hash(data: AuditCheckpoint.signingDomain + checkpoint))
        let (raw, _) = try await tpmCall { () async throws(TPMError) in try await tpm.signWithAuditKey(sha256: digest) }
        do {
            return Array(try P256.Signing.ECDSASignature(rawRepresentation: raw).derRepresentation)
        } catch {
            throw TokenError(.crypto, "the TPM's audit signature is malformed")
        }
    }

    public func sign(asUser user: String, digest: [UInt8]) async throws(TokenError) -> [UInt8] {
        try await soft.sign(asUser: user, digest: digest)
    }

    public func random(count: Int) async throws(TokenError) -> [UInt8] {
        guard roles.keys else { return try await soft.random(count: count) }
        guard (1...1024).contains(count) else { throw TokenError(.invalidArgument, "random bytes: ask for 1-1024, not \(count)") }
        return try await tpmCall { () async throws(TPMError) in try await tpm.random(count: count) }
    }

    // MARK: users and records: the soft token's

    public func addUser(_ name: String, pin: String, roles: [String]) async throws(TokenError) {
        try await soft.addUser(name, pin: pin, roles: roles)
    }
    public func verifyPIN(user: String, pin: String) async throws(TokenError) -> PinVerdict {
        try await soft.verifyPIN(user: user, pin: pin)
    }
    public func unblockPIN(user: String, soPIN: String, newPIN: String) async throws(TokenError) -> PinVerdict {
        try await soft.unblockPIN(user: user, soPIN: soPIN, newPIN: newPIN)
    }
    public func pinStatus(user: String) async throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        try await soft.pinStatus(user: user)
    }
    public func soPINStatus() async throws(TokenError) -> (triesLeft: Int, maxTries: Int) {
        try await soft.soPINStatus()
    }
    public func addUserReturningCertificate(_ name: String, pin: String, roles: [String]) async throws(TokenError) -> Certificate {
        try await soft.addUserReturningCertificate(name, pin: pin, roles: roles)
    }
    public func issueCertificate(user: String, csrPEM: String?) async throws(TokenError) -> Certificate {
        try await soft.issueCertificate(user: user, csrPEM: csrPEM)
    }
    public func userNames() async -> [String] { await soft.userNames() }
    public func roles(of user: String) async throws(TokenError) -> [String] { try await soft.roles(of: user) }
    public func daemonRecord(_ name: String) async -> [UInt8]? { await soft.daemonRecord(name) }
    public func setDaemonRecords(_ records: [String: [UInt8]?]) async throws(TokenError) {
        try await soft.setDaemonRecords(records)
    }

    // MARK: helpers

    /// Runs a TPM command; the TPM's failures become token errors that say it was the TPM.
    func tpmCall<T: Sendable>(_ body: () async throws(TPMError) -> T) async throws(TokenError) -> T {
        do {
            return try await body()
        } catch {
            throw tokenError(error)
        }
    }

    /// The TPM's failures as token errors that say it was the TPM; bad input stays bad input.
    func tokenError(_ error: TPMError) -> TokenError {
        error.code == 0 ? TokenError(.invalidArgument, error.description) : TokenError(.unavailable, "the TPM (\(tpm.tcti)): \(error)")
    }

    /// The root CA's certificate for a TPM key (PEM), and the key as a PEM public key.
    func hardwareCertificate(_ name: String, point: [UInt8]) async throws(TokenError) -> (certificate: String, key: String) {
        if let cached = certificates.lookup(name, point: point) { return cached }
        let key: P256.Signing.PublicKey
        do {
            key = try P256.Signing.PublicKey(x963Representation: point)
        } catch {
            throw TokenError(.unavailable, "the TPM's \(name) key is not a P-256 point")
        }
        let certificate = try await soft.certificate(forHardwareKey: name, purpose: name == "tpm-audit" ? .audit : .attestation, publicKey: key)
        let entry = (try IdentityCA.pem(certificate), key.pemRepresentation)
        certificates.store(name, point: point, entry)
        return entry
    }
}

/// The PEM certificates of the TPM's keys, kept once issued: the quote path must not parse a
/// certificate from the store each time.
final class CertificateCache: Sendable {
    private let entries = Mutex<[String: (point: [UInt8], certificate: String, key: String)]>([:])

    func lookup(_ name: String) -> (certificate: String, key: String)? {
        entries.withLock { entries in entries[name].map { ($0.certificate, $0.key) } }
    }

    func lookup(_ name: String, point: [UInt8]) -> (certificate: String, key: String)? {
        entries.withLock { entries in
            guard let entry = entries[name], entry.point == point else { return nil }
            return (entry.certificate, entry.key)
        }
    }

    func store(_ name: String, point: [UInt8], _ entry: (certificate: String, key: String)) {
        entries.withLock { $0[name] = (point, entry.certificate, entry.key) }
    }
}
