import Crypto
import Foundation
import UkeyCore
import UkeySM
import UkeyStore
import X509

/// The soft Ukey: all three roles (registers, keys, users) in software, with its state in a
/// sealed store whose key is wrapped by `STATE/device.key` (architecture.md section 3).
///
/// It protects against theft or offline modification of the store alone, not against root on a
/// running host; the tpm backend seals the store key to a TPM for that.
///
/// An actor whose isolated operations do not suspend, so each state change (a commit of the
/// store) is one step that nothing interleaves with. The slow work runs outside it: a PIN's
/// derivation on its own serial queue between two isolated steps (spend a try durably; then
/// restore or not), with a per-user gate so two checks of one user cannot overlap; quote
/// signatures off the actor so concurrent callers use every core; and a certificate's signature
/// between two isolated steps (prepare; then commit, after checking that what was prepared from
/// still stands), because a CA key in a TPM signs asynchronously.
public actor SoftToken {
    public struct Configuration: Sendable {
        public var stateDirectory: String
        /// Tries for a user PIN (default 3).
        public var pinMaxTries = 3
        /// Tries for the SO PIN (default 10); when they run out the token is locked for good.
        public var soMaxTries = 10
        public var kdf = PinRecord.KDF.standard
        /// Register banks for the current boot.
        public var banks: Set<HashAlgorithm> = [.sha256]
        public var userCertificateValidity = IdentityCA.defaultUserValidity
        /// "Now", read in one place so tests can move time.
        public var clock: @Sendable () -> Date = { Date() }
        /// What keeps the store key: `STATE/device.key` by default, a TPM with the tpm backend.
        public var protector: any StoreKeyProtector
        /// The CAs' keys (`rootCA`, `tokenKeysCA`, `userCA`) when they live outside the store (in
        /// a TPM, with keys = tpm): a token initialised with them keeps no CA key of its own.
        public var certificateAuthorityKeys: [TokenKey: Certificate.PrivateKey] = [:]
        /// Hardware the token is bound to (a card's serial and keys): written at initialisation,
        /// and required to be the same at every open, so another card is refused, not adopted.
        public var hardwareBinding: HardwareBinding?
        /// The algorithm of the token's own keys, at initialisation (an opened token uses the one
        /// it was initialised with). With SM2, its CAs, attestation and audit keys are SM2.
        public var algorithm = TokenAlgorithm.p256

        public init(stateDirectory: String) {
            self.stateDirectory = stateDirectory
            self.protector = DeviceKeyProtector(stateDirectory: stateDirectory)
        }
    }

    public static let backendName = "soft"

    let configuration: Configuration
    /// The algorithm of the token's keys and its users' keys, as it was initialised (an unknown
    /// one in the record is refused at open).
    public nonisolated let keyAlgorithm: TokenAlgorithm
    var store: SealedStore
    var token: TokenRecord
    var registers: RegisterSet
    public internal(set) var bootID: String
    /// The restricted keys and the attestation certificate, decoded once: they never change after
    /// initialisation, and quotes sit on the attestation hot path.
    var keyCache: [TokenKey: P256.Signing.PrivateKey] = [:]
    var signingKeys: [TokenKey: TokenSigningKey] = [:]
    var attestationPEM: String?
    /// Users' signing keys, decoded on first use; dropped whenever a user record changes.
    var userKeys: [String: TokenSigningKey] = [:]
    /// Users with a PIN check in progress, and the checks waiting behind it.
    var pinGates: [String: [CheckedContinuation<Void, Never>]] = [:]

    /// Whether a soft token has been initialised in `stateDirectory`.
    public static func isInitialized(stateDirectory: String) -> Bool {
        SealedStore.exists(in: stateDirectory)
    }

    /// Creates the token: SO PIN, root CA, attestation and audit keys with their certificates,
    /// and the enrolled policy-signer certificate, in one durable write. Refuses if one exists.
    public static func initialize(
        _ configuration: Configuration,
        soPIN: String,
        policySigner: Certificate,
        bootID: String
    ) async throws(TokenError) -> SoftToken {
        try await initialize(configuration, soPIN: soPIN, policySigner: PolicySigner.p256(policySigner), bootID: bootID)
    }

    /// The same, with the policy signer's key P-256 or SM2.
    public static func initialize(
        _ configuration: Configuration,
        soPIN: String,
        policySigner: PolicySigner,
        bootID: String
    ) async throws(TokenError) -> SoftToken {
        try PinRules.soPIN.check(soPIN, what: "the SO PIN")
        guard !isInitialized(stateDirectory: configuration.stateDirectory) else {
            throw TokenError(.alreadyInitialized, "a token is already initialised in \(configuration.stateDirectory)")
        }
        let now = configuration.clock()
        let serial = Hex.encode((0..<8).map { _ in UInt8.random(in: 0...255) })
        var records: [String: [UInt8]] = [:]
        if case .sm2(let id) = configuration.algorithm {
            guard configuration.certificateAuthorityKeys.isEmpty, configuration.hardwareBinding == nil else {
                throw TokenError(
                    .invalidArgument,
                    "an SM2 token keeps its keys in its own store: a TPM's or a card's keys are P-256"
                )
            }
            try makeSM2Keys(into: &records, serial: serial, now: now, id: id)
        } else {
            try await makeP256Keys(into: &records, configuration: configuration, serial: serial, now: now)
        }
        records[SoftRecordName.certificate(SoftRecordName.policySigner)] = policySigner.derRepresentation
        records[SoftRecordName.soPIN] = try RecordCoding.encode(
            try PinRecord(pin: soPIN, maxTries: configuration.soMaxTries, kdf: configuration.kdf)
        )
        var token = TokenRecord(
            serial: serial,
            createdAt: now,
            bootCounter: 1,
            pinMaxTries: configuration.pinMaxTries,
            kdf: configuration.kdf
        )
        (token.algorithm, token.sm2ID) = configuration.algorithm.recordValue
        records[SoftRecordName.token] = try RecordCoding.encode(token)
        if let binding = configuration.hardwareBinding {
            records[SoftRecordName.binding(binding.name)] = Array(binding.identity.utf8)
        }
        let store: SealedStore
        do {
            store = try SealedStore.create(
                in: configuration.stateDirectory,
                protector: configuration.protector,
                initial: records
            )
        } catch {
            throw TokenError(error)
        }
        return SoftToken(
            configuration: configuration,
            store: store,
            token: token,
            algorithm: configuration.algorithm,
            bootID: bootID
        )
    }

    /// The P-256 hierarchy: root CA, the two sub-CAs (their keys the store's, or a TPM's), and the
    /// attestation and audit keys, each with its certificate.
    private static func makeP256Keys(
        into records: inout [String: [UInt8]],
        configuration: Configuration,
        serial: String,
        now: Date
    ) async throws(TokenError) {
        let rootKey: Certificate.PrivateKey
        if let external = configuration.certificateAuthorityKeys[.rootCA] {
            rootKey = external
        } else {
            let softKey = P256.Signing.PrivateKey()
            records[SoftRecordName.key(.rootCA)] = Array(softKey.rawRepresentation)
            rootKey = Certificate.PrivateKey(softKey)
        }
        let root = try await IdentityCA.makeRoot(key: rootKey, commonName: "ukey root CA \(serial)", now: now)
        records[SoftRecordName.certificate(TokenKey.rootCA.rawValue)] = try IdentityCA.der(root)
        // The sub-CAs' keys are the store's, or the TPM's with keys = tpm; the root CA's key signs
        // nothing after this but their certificates.
        var subordinates: [CertificatePolicy: (key: Certificate.PrivateKey, certificate: Certificate)] = [:]
        for policy in [CertificatePolicy.tokenKeys, .users, .vtpm] {
            let name = policy.caKey
            let key: Certificate.PrivateKey
            if let external = configuration.certificateAuthorityKeys[name] {
                key = external
            } else {
                let softKey = P256.Signing.PrivateKey()
                records[SoftRecordName.key(name)] = Array(softKey.rawRepresentation)
                key = Certificate.PrivateKey(softKey)
            }
            let certificate = try await IdentityCA.makeSubordinate(
                policy,
                commonName: "ukey \(policy.rawValue) CA \(serial)",
                subjectKey: key.publicKey,
                rootKey: rootKey,
                rootCertificate: root,
                now: now
            )
            subordinates[policy] = (key, certificate)
            records[SoftRecordName.certificate(name.rawValue)] = try IdentityCA.der(certificate)
        }
        let tokenKeysCA = subordinates[.tokenKeys]!
        for (key, purpose) in [(TokenKey.attestation, KeyPurpose.attestation), (.audit, .audit)] {
            let privateKey = P256.Signing.PrivateKey()
            let certificate = try await IdentityCA.issue(
                commonName: "ukey \(key.rawValue) \(serial)",
                subjectKey: Certificate.PublicKey(privateKey.publicKey),
                purpose: purpose,
                caKey: tokenKeysCA.key,
                caCertificate: tokenKeysCA.certificate,
                now: now,
                validity: IdentityCA.defaultRootValidity
            )
            records[SoftRecordName.key(key)] = Array(privateKey.rawRepresentation)
            records[SoftRecordName.certificate(key.rawValue)] = try IdentityCA.der(certificate)
        }
    }

    /// The SM2 hierarchy (`SM2IdentityCA`): every key SM2, kept as PKCS#8 in the store, every
    /// certificate signed SM2-with-SM3 with the token's ID.
    private static func makeSM2Keys(
        into records: inout [String: [UInt8]],
        serial: String,
        now: Date,
        id: [UInt8]
    ) throws(TokenError) {
        func newKey(_ name: TokenKey) throws(TokenError) -> SM2PrivateKey {
            do {
                let key = try SM2PrivateKey()
                records[SoftRecordName.key(name)] = key.derRepresentation
                return key
            } catch {
                throw TokenError(.crypto, "cannot make the SM2 \(name.rawValue) key: \(error)")
            }
        }
        func publicKey(_ key: SM2PrivateKey) throws(TokenError) -> SM2PublicKey {
            do {
                return try key.publicKey
            } catch {
                throw TokenError(.crypto, "an SM2 key without its public key: \(error)")
            }
        }
        let rootKey = try newKey(.rootCA)
        let root = try SM2IdentityCA.makeRoot(key: rootKey, commonName: "ukey root CA \(serial)", now: now, id: id)
        records[SoftRecordName.certificate(TokenKey.rootCA.rawValue)] = root.derRepresentation
        var tokenKeysCA: (key: SM2PrivateKey, certificate: SM2Certificate)?
        for (policy, name) in [(CertificatePolicy.tokenKeys, TokenKey.tokenKeysCA), (.users, .userCA)] {
            let key = try newKey(name)
            let certificate = try SM2IdentityCA.makeSubordinate(
                policy,
                commonName: "ukey \(policy.rawValue) CA \(serial)",
                subjectKey: try publicKey(key),
                rootKey: rootKey,
                rootCertificate: root,
                now: now,
                id: id
            )
            records[SoftRecordName.certificate(name.rawValue)] = certificate.derRepresentation
            if policy == .tokenKeys { tokenKeysCA = (key, certificate) }
        }
        for (name, purpose) in [(TokenKey.attestation, KeyPurpose.attestation), (.audit, .audit)] {
            let key = try newKey(name)
            let certificate = try SM2IdentityCA.issue(
                commonName: "ukey \(name.rawValue) \(serial)",
                subjectKey: try publicKey(key),
                purpose: purpose,
                caKey: tokenKeysCA!.key,
                caCertificate: tokenKeysCA!.certificate,
                now: now,
                id: id,
                validity: IdentityCA.defaultRootValidity
            )
            records[SoftRecordName.certificate(name.rawValue)] = certificate.derRepresentation
        }
    }

    /// Opens an initialised token, failing closed on any integrity or permission problem.
    public static func open(_ configuration: Configuration, bootID: String) throws(TokenError) -> SoftToken {
        guard isInitialized(stateDirectory: configuration.stateDirectory) else {
            throw TokenError(.notInitialized, "no token in \(configuration.stateDirectory); initialise it first")
        }
        let store: SealedStore
        do {
            store = try SealedStore.open(
                in: configuration.stateDirectory,
                protector: configuration.protector
            )
        } catch {
            throw TokenError(error)
        }
        let token = try RecordCoding.decode(TokenRecord.self, store[SoftRecordName.token], name: SoftRecordName.token)
        if let binding = configuration.hardwareBinding {
            guard let bound = store[SoftRecordName.binding(binding.name)].map({ String(decoding: $0, as: UTF8.self) })
            else {
                throw TokenError(
                    .unavailable,
                    "the token in \(configuration.stateDirectory) was not initialised with a \(binding.name); initialise a new one to use it"
                )
            }
            guard bound == binding.identity else {
                throw TokenError(
                    .unavailable,
                    "the \(binding.name) present (\(binding.identity)) is not the one this token was initialised with (\(bound)); insert that one"
                )
            }
        }
        for ca in [TokenKey.tokenKeysCA, .userCA] where store[SoftRecordName.certificate(ca.rawValue)] == nil {
            throw TokenError(
                .store,
                "the token in \(configuration.stateDirectory) was initialised by an earlier ukey, without the \(ca.rawValue) sub-CA that certifies its keys; its root CA cannot keep attestation and user keys apart, so initialise a new token (ukeyctl init) and enrol it"
            )
        }
        let algorithm = try TokenAlgorithm(recordName: token.algorithm, id: token.sm2ID)
        return SoftToken(configuration: configuration, store: store, token: token, algorithm: algorithm, bootID: bootID)
    }

    private init(
        configuration: Configuration,
        store: SealedStore,
        token: TokenRecord,
        algorithm: TokenAlgorithm,
        bootID: String
    ) {
        self.configuration = configuration
        self.keyAlgorithm = algorithm
        self.store = store
        self.token = token
        self.registers = RegisterSet(algorithms: configuration.banks)
        self.bootID = bootID
    }

    /// The token's serial number (hex), also in its certificates' names.
    public var serial: String { token.serial }
    public var bootCounter: UInt64 { token.bootCounter }

    /// Commits record changes durably; memory follows disk only on success.
    func commit(_ changes: [String: [UInt8]?]) throws(TokenError) {
        do {
            try store.commit(changes)
        } catch {
            throw TokenError(error)
        }
        if changes.keys.contains(where: { $0.hasPrefix("user.") }) { userKeys = [:] }
    }

    /// The algorithm of the token's own keys, as it was initialised.
    var algorithm: TokenAlgorithm {
        get throws(TokenError) { keyAlgorithm }
    }

    /// The sub-CA that issues certificates under `policy`: its key and its certificate.
    func subordinateCA(
        _ policy: CertificatePolicy
    ) throws(TokenError) -> (key: Certificate.PrivateKey, certificate: Certificate) {
        guard try algorithm == .p256 else {
            throw TokenError(
                .invalidArgument,
                "this token's keys are SM2, and its SM2 sub-CAs certify only the SM2 keys it makes itself, not a TPM's or a card's P-256 keys"
            )
        }
        let name = policy.caKey
        guard let der = store[SoftRecordName.certificate(name.rawValue)] else {
            throw TokenError(.store, "the sealed store lacks the \(name.rawValue) certificate")
        }
        let certificate = try IdentityCA.certificate(der: der)
        if store[SoftRecordName.key(name)] != nil { return (Certificate.PrivateKey(try privateKey(name)), certificate) }
        guard let external = configuration.certificateAuthorityKeys[name] else {
            throw TokenError(
                .store,
                "the \(name.rawValue) key lives in a TPM (keys = \"tpm\"), and this configuration has none"
            )
        }
        return (external, certificate)
    }

    /// The attestation or audit key, in the token's algorithm.
    func signingKey(_ key: TokenKey) throws(TokenError) -> TokenSigningKey {
        if let cached = signingKeys[key] { return cached }
        let signing: TokenSigningKey
        switch try algorithm {
        case .p256:
            signing = .p256(try privateKey(key))
        case .sm2(let id):
            guard let der = store[SoftRecordName.key(key)] else {
                throw TokenError(.store, "the sealed store lacks the \(key.rawValue) key")
            }
            do {
                signing = .sm2(try SM2PrivateKey(derRepresentation: der), id: id)
            } catch {
                throw TokenError(.store, "the SM2 \(key.rawValue) key in the sealed store is malformed")
            }
        }
        signingKeys[key] = signing
        return signing
    }

    func privateKey(_ key: TokenKey) throws(TokenError) -> P256.Signing.PrivateKey {
        if let cached = keyCache[key] { return cached }
        guard let raw = store[SoftRecordName.key(key)] else {
            throw TokenError(.store, "the sealed store lacks the \(key.rawValue) key")
        }
        do {
            let decoded = try P256.Signing.PrivateKey(rawRepresentation: raw)
            keyCache[key] = decoded
            return decoded
        } catch {
            throw TokenError(.store, "the \(key.rawValue) key in the sealed store is malformed")
        }
    }
}
