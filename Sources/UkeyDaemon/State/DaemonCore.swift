import Foundation
import Logging
import NIOConcurrencyHelpers
import UkeyAudit
import UkeyCore
import UkeyPolicy
import UkeyStore
import UkeyToken
import UkeyVarlink
import X509

/// The daemon's state and the logic of its services, behind one actor: the token, the policy in
/// force, the boot chain of this host boot, user sessions. Services are extensions by concern.
public actor DaemonCore {
    public struct Paths: Sendable {
        public var stateDirectory: String
        public var runtimeDirectory: String
        /// Signed policies dropped here are loaded at start and on reload.
        public var policyDirectory: String?
        public init(stateDirectory: String, runtimeDirectory: String, policyDirectory: String? = nil) {
            self.stateDirectory = stateDirectory
            self.runtimeDirectory = runtimeDirectory
            self.policyDirectory = policyDirectory
        }
    }

    let provider: any TrustedRootProvider
    let paths: Paths
    let hostBoot: String
    let clock: @Sendable () -> Date
    /// Whether the demo policy signer may be trusted (`--allow-demo-keys`; see `DemoKeys`).
    let allowDemoKeys: Bool
    let logger: Logger
    let journal: BootJournal
    /// The audit log, open once the token is (its checkpoints need the audit key).
    nonisolated let audit: AuditHolder

    var token: (any TrustedRoot)?
    var loaded: LoadedPolicy? { didSet { publishRuntime() } }
    var modeOverride: EnforcementMode? { didSet { publishRuntime() } }
    var bootID: String
    var chain: BootChain? { didSet { publishRuntime() } }
    /// What `CheckExec` reads, without a hop through this actor: exec checks are the hot path and
    /// must never wait behind a measurement or a reload (the whole view is swapped at once).
    nonisolated let runtime = NIOLockedValueBox<RuntimeView?>(nil)
    var eventLog = EventLog(banks: [.sha256]) { didSet { eventLogDigest = nil } }
    /// The digest of the serialized event log, kept until the log changes: a ukey-v1 quote
    /// binds it, and serialising thousands of events for every quote would dominate the quote.
    var eventLogDigest: UkeyCore.Digest?
    /// The token-keys sub-CA's certificate (PEM), sent with every quote: it never changes.
    var tokenKeysCAPEM: String?
    var measurements: [BootJournal.Measurement] = []
    /// Measurements of earlier boot sessions of this host boot that are still in registers which
    /// cannot be reset (a TPM's PCRs): in the event log, not in the chain.
    var earlier: [BootJournal.Measurement] = []
    /// Releases in this boot session, each after so many of `measurements` (replayed in order).
    var releases: [(after: Int, entity: String)] = []
    /// Set when the registers' hardware failed an extend: before the next one, the PCRs are
    /// checked against the journal again (the TPM may have restarted and lost them).
    var registersSuspect = false
    /// Measurements queued for the next batch (`MeasurementBatch.swift`), and whether a drainer runs.
    var pendingMeasurements: [PendingMeasurement] = []
    var drainingMeasurements = false
    /// Batches committed since start (reported by Status, so group commit can be seen working).
    var measurementBatches = 0
    var sessions = SessionTable()
    var denialFlusher: Task<Void, Never>?
    var gate = SerialGate()

    /// The measurements one host boot may record (`[boot] max-measurements`).
    public static let defaultMaxMeasurements = 1_000_000

    public init(
        provider: any TrustedRootProvider,
        paths: Paths,
        hostBootID: String = HostBoot.currentID(),
        logger: Logger,
        audit: AuditSettings = AuditSettings(),
        maxMeasurements: Int = DaemonCore.defaultMaxMeasurements,
        allowDemoKeys: Bool = false,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.allowDemoKeys = allowDemoKeys
        self.audit = AuditHolder(settings: audit)
        self.provider = provider
        self.paths = paths
        self.hostBoot = hostBootID
        self.logger = logger
        self.clock = clock
        self.journal = BootJournal(runtimeDirectory: paths.runtimeDirectory, limit: maxMeasurements)
        self.bootID = UUID().uuidString.lowercased()
    }

    /// Opens the token (if initialised), restores the policy in force and replays this host
    /// boot's measurements. Fails closed: a store or policy that does not verify stops the start.
    public func start() async throws {
        try StatePermissions.ensureRuntimeDirectory(paths.runtimeDirectory)
        if let previous = try journal.load(hostBoot: hostBoot) {
            bootID = previous.boot
            logger.info("continuing boot \(previous.boot) of this host boot with \(previous.entries.count) measurements")
            measurements = previous.entries
            earlier = previous.earlier
            releases = previous.releases
        } else {
            try journal.start(hostBoot: hostBoot, boot: bootID)
            logger.info("new boot session \(bootID)")
        }
        guard provider.isInitialized() else {
            logger.notice("the token is not initialised; waiting for io.ukey.Admin.Initialize")
            return
        }
        let token = try provider.open(bootID: bootID)
        if !allowDemoKeys, DemoKeys.isDemoPolicySigner(try await token.certificate(named: "policy-signer")) {
            throw StoreError(.integrity, path: paths.stateDirectory, DemoKeys.refusal)
        }
        self.token = token
        try await openAudit(token)
        try await restorePolicy(token)
        if paths.policyDirectory != nil {
            // A bad policy in the directory is refused and recorded; the daemon starts on the old one.
            _ = try? await reloadPolicyDirectory()
        }
        if let raw = await token.daemonRecord("mode"), let mode = EnforcementMode(rawValue: String(decoding: raw, as: UTF8.self)) {
            modeOverride = mode
        }
        if token.registersPersist {
            // A TPM's PCRs survived the restart: check they are what this host boot measured.
            try await checkPersistentRegisters(token)
        } else {
            // Soft registers live in memory: rebuild them from the journal.
            for m in earlier + measurements { try await token.extend(register: m.register, digest: m.digest) }
        }
        rebuildChain()
    }

    /// Registers that outlive ukeyd (PCRs) must hold exactly what the journal of this host boot
    /// replays to, or the event log would not explain them and no quote could be trusted. A
    /// mismatch stops the start: something else extends those PCRs, or the TPM restarted without
    /// the host, or the journal in the runtime directory was lost.
    func checkPersistentRegisters(_ token: any TrustedRoot, completingCutExtend: Bool = true) async throws {
        let policyRegisters = loaded?.registers ?? []
        if let unusable = policyRegisters.first(where: { !token.usableRegisters.contains($0) }) {
            throw DaemonStartError("the policy in force uses register \(unusable), which the \(token.roleBackends["registers"] ?? "") registers cannot extend (usable: \(token.usableRegisters.sorted().map(String.init).joined(separator: ", "))); load a policy without it first")
        }
        let all = earlier + measurements
        var replay = RegisterSet(algorithms: [.sha256])
        for m in all { try replay.extend(m.register, with: m.digest) }
        let registers = Set(policyRegisters).union(all.map(\.register))
        for register in registers.sorted() {
            let actual = try await token.read(register: register, bank: .sha256)
            let expected = try replay.value(register, in: .sha256)
            if actual == expected { continue }
            // The journal is written ahead of the extend: after a crash between the two, the PCR
            // is one measurement behind. That measurement was never answered; complete it.
            if completingCutExtend, let last = all.last, last.register == register {
                var before = RegisterSet(algorithms: [.sha256])
                for m in all.dropLast() { try before.extend(m.register, with: m.digest) }
                if try actual == before.value(register, in: .sha256) {
                    try await token.extend(register: register, digest: last.digest)
                    logger.notice("completed the extend of \(last.entity)/\(last.component) into PCR \(register), cut short by a stop")
                    continue
                }
            }
            throw DaemonStartError(
                "PCR \(register) holds \(actual.hex) but the \(all.count) measurements ukey recorded this host boot replay to \(expected.hex): something else extends that PCR, or the TPM restarted without the host, or \(journal.path) was lost. ukeyd will not vouch for this boot: restart the host, or give ukey's entities PCRs nothing else uses"
            )
        }
        logger.info("PCRs \(registers.sorted().map(String.init).joined(separator: ", ")) match the \(earlier.count + measurements.count) measurements of this host boot")
    }

    /// Records the daemon's stop and closes the audit log with a final checkpoint.
    public func stop() async {
        denialFlusher?.cancel()
        guard let log = audit.log else { return }
        for entry in audit.denials.flush(all: true) { _ = log.enqueue(entry) }
        try? await log.append(AuditEntry(type: "daemon-stop", actor: .daemon))
        await log.close()
        audit.forwarder?.stop()
    }

    /// Writes the counts of permission-denial intervals that are over, every interval.
    func startDenialFlusher() {
        denialFlusher?.cancel()
        let audit = self.audit
        denialFlusher = Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(DenialAggregator.interval / 2))
                guard let log = audit.log else { continue }
                for entry in audit.denials.flush() { _ = log.enqueue(entry) }
            }
        }
    }

    var auditPath: String { paths.stateDirectory + "/audit.log" }

    /// Opens the audit log, checked against the checkpoint sealed in the token, and records the start.
    func openAudit(_ token: any TrustedRoot) async throws {
        // The certificates of the token's keys, fetched now: a key that lives in a TPM is
        // certified once, so audit verification and attestation work while the TPM is away.
        for key in [TokenKey.audit, .attestation] { _ = try await token.certificate(named: key.rawValue) }
        let sealed = try await TokenCheckpointing.sealed(in: token)
        var configuration = AuditLog.Configuration(path: auditPath)
        configuration.checkpointEvery = audit.settings.checkpointEvery
        configuration.checkpointInterval = TimeInterval(audit.settings.checkpointSeconds)
        configuration.maxBytes = audit.settings.maxSize > 0 ? UInt64(audit.settings.maxSize) : nil
        let logger = self.logger
        if let destination = audit.settings.forward.flatMap(AuditForwarder.Destination.init(rawValue:)) {
            let forwarder = audit.forwarder ?? AuditForwarder(destination: destination, socketPath: audit.settings.forwardSocket) { logger.warning("audit: \($0)") }
            audit.forwarder = forwarder
            configuration.durable = { forwarder.forward($0) }
            logger.info("audit records are also forwarded to \(destination.rawValue) at \(forwarder.socketPath)")
        }
        let (tailKey, tailSealed) = await TokenCheckpointing.tailSealKey(in: token)
        let tailSeal = try AuditTailSeal(directory: paths.stateDirectory, key: tailKey)
        let log = try AuditLog(
            configuration: configuration, sealed: sealed, checkpointing: TokenCheckpointing(token: token),
            tailSeal: tailSeal, tailSealRequired: tailSealed
        ) {
            logger.error("audit: \($0)")
        }
        if !tailSealed { try await TokenCheckpointing.storeTailSealKey(tailKey, in: token) }
        if log.recovery.droppedPartialBytes > 0 {
            logger.warning("audit log: dropped \(log.recovery.droppedPartialBytes) bytes of a record cut short by a crash (never acknowledged)")
        }
        audit.log = log
        startDenialFlusher()
        try await log.append(AuditEntry(type: "daemon-start", actor: .daemon, subject: ["version": .string(Dispatcher.version), "bootId": .string(bootID)]))
        logger.info("audit log \(auditPath): \(log.recovery.records) records, continuing")
    }

    /// Records an event of the daemon's own (a reload on SIGHUP); durable before it returns.
    func record(_ type: String, _ subject: [String: AuditValue]) async {
        guard let log = audit.log else { return }
        do {
            try await log.append(AuditEntry(type: type, actor: .daemon, subject: subject))
        } catch {
            logger.error("audit: cannot record \(type): \(error)")
        }
    }

    /// SIGHUP: take a newer policy from the policy directory, if there is one.
    public func reload() async {
        guard token != nil, paths.policyDirectory != nil else { return }
        _ = try? await reloadPolicyDirectory()
    }

    /// The effective mode: an administrator's SetMode, else the policy's, else enforce.
    var mode: EnforcementMode { modeOverride ?? loaded?.policy.mode ?? .enforce }

    func requireToken() throws(VarlinkError) -> any TrustedRoot {
        guard let token else { throw DaemonErrors.notInitialized() }
        return token
    }

    /// Recomputes the chain of this boot from the measurements under the policy in force. The
    /// chain is a pure function of (policy, measurements), so a policy reload re-judges the same
    /// measurements; registers and the event log are what was measured and stay as they are.
    func rebuildChain() {
        guard let loaded else {
            chain = nil
            return
        }
        var rebuilt = BootChain(expected: loaded.expected, bootID: bootID)
        var log = EventLog(banks: [.sha256], vendorInfo: "ukey boot \(bootID)")
        for m in earlier {
            // Still in the PCRs, so still in the log that explains them; judged by no chain.
            log.appendMeasurement(register: m.register, digest: m.digest, description: "earlier session: \(m.entity)/\(m.component)")
        }
        var pendingReleases = releases[...]
        for (index, m) in measurements.enumerated() {
            while let release = pendingReleases.first, release.after <= index {
                _ = try? rebuilt.release(entity: release.entity)
                pendingReleases = pendingReleases.dropFirst()
            }
            // The log says what was extended where; the chain judges it under the policy now in force
            // (a measurement of an entity this policy does not know is logged but judges nothing).
            log.appendMeasurement(register: m.register, digest: m.digest, description: "\(m.entity)/\(m.component)")
            _ = try? rebuilt.measure(entity: m.entity, component: m.component, digest: m.digest)
        }
        for release in pendingReleases { _ = try? rebuilt.release(entity: release.entity) }
        chain = rebuilt
        eventLog = log
    }

    private func publishRuntime() {
        guard let loaded else {
            runtime.withLockedValue { $0 = nil }
            return
        }
        let trusted = Set(loaded.whitelist.vmNames.filter { chain?.state(of: $0) == .trusted })
        let view = RuntimeView(whitelist: loaded.whitelist, trusted: trusted, mode: mode)
        runtime.withLockedValue { $0 = view }
    }

    /// Runs `body` with no other gated operation interleaved.
    func serialized<T>(_ body: () async throws -> T) async rethrows -> T {
        if gate.enter() == nil {
            await withCheckedContinuation { gate.enqueue($0) }
        }
        defer { gate.leave() }
        return try await body()
    }

    // MARK: policy persistence

    var policyPath: String { paths.stateDirectory + "/policy.yaml" }

    struct PolicyRecord: Codable {
        var version: Int
        var sha256: String
    }

    private func restorePolicy(_ token: any TrustedRoot) async throws {
        guard let raw = await token.daemonRecord("policy") else { return }
        let record = try JSONDecoder().decode(PolicyRecord.self, from: Data(raw))
        let text = try AtomicFile.read(policyPath, limit: PolicyParser.maxPolicyBytes)
        let signature = try AtomicFile.read(policyPath + ".sig", limit: 4096)
        guard Digest.of(text).description == record.sha256 else {
            throw StoreError(.integrity, path: policyPath, "integrity check failed: the policy file is not the one that was loaded (its digest differs from the sealed record)")
        }
        let signer = try await token.certificate(named: "policy-signer")
        do {
            let store = allowLists
            loaded = try LoadedPolicy.verify(text: text, signature: signature, signer: signer, above: nil) { (store.path(for: $0), nil) }
        } catch {
            throw StoreError(.integrity, path: policyPath, "integrity check failed: the stored policy no longer verifies: \(error)")
        }
        logger.info("policy version \(record.version) in force")
    }

    var allowLists: AllowListStore { AllowListStore(stateDirectory: paths.stateDirectory, base: paths.policyDirectory) }

    func persistPolicy(_ policy: LoadedPolicy, token: any TrustedRoot) async throws {
        try allowLists.commit(policy.policy)
        try AtomicFile.write(policy.text, to: policyPath, mode: 0o600)
        try AtomicFile.write(policy.signature, to: policyPath + ".sig", mode: 0o600)
        let record = PolicyRecord(version: policy.version, sha256: Digest.of(policy.text).description)
        // The sealed record is written last: until it is, the old policy is the one in force.
        try await token.setDaemonRecords(["policy": Array(try JSONEncoder().encode(record)), "mode": nil])
    }
}
