import Foundation
import Logging
import Synchronization
import Synchronization
import UkeyCore
import UkeyPolicy
import UkeyToken

/// The boot chain of this host boot: what was measured (the journal, written ahead), the
/// registers it went into, the event log that explains them, and the chain that judges it under
/// the policy in force (architecture.md section 3). Measurements arrive through the queue of
/// `MeasurementBatch.swift`.
@DaemonActor
final class BootService {
    let journal: BootJournal
    let hostBoot: String
    let logger: Logger
    let tokens: TokenAccess
    let policy: PolicyService
    let sessions: SessionService
    let gate: SerialGate

    private(set) var bootID: String
    private(set) var chain: BootChain? { didSet { publishRuntime() } }
    /// What `CheckExec` reads, without a hop through this actor: exec checks are the hot path and
    /// must never wait behind a measurement or a reload (the whole view is swapped at once).
    nonisolated let runtime = Mutex<RuntimeView?>(nil)
    /// How many times each entity was released since ukeyd started: a VM's guard channel is
    /// dropped when its VM is released (it stopped), so a new QEMU's socket is served afresh.
    nonisolated let releases = Mutex<[String: UInt64]>([:])
    /// What run-time decisions depend on when last published, and its generation: the number
    /// exec guards key their caches by, so it moves only when a decision could change.
    private var runtimeBasis: RuntimeView.Basis?
    private var runtimeGeneration: UInt64 = 0
    var eventLog = EventLog(banks: [.sha256]) { didSet { eventLogDigest = nil } }
    /// The digest of the serialized event log, kept until the log changes: a ukey-v1 quote
    /// binds it, and serialising thousands of events for every quote would dominate the quote.
    private var eventLogDigest: UkeyCore.Digest?
    /// This boot session's measurements, the earlier sessions' still in registers that cannot be
    /// reset (a TPM's PCRs: in the event log, judged by no chain), and the releases among them.
    var record = BootRecord()
    /// Set when the registers' hardware failed an extend: before the next one, the PCRs are
    /// checked against the journal again (the TPM may have restarted and lost them).
    var registersSuspect = false
    /// Measurements waiting for the next batch.
    var queue = MeasurementQueue()
    /// What each VM's writable components held when it last stopped (the sealed store's
    /// `vm-states` record, read at start): what the next start must find.
    var seals = VMStateSeals()

    init(
        runtimeDirectory: String,
        hostBoot: String,
        maxMeasurements: Int,
        logger: Logger,
        tokens: TokenAccess,
        policy: PolicyService,
        sessions: SessionService,
        gate: SerialGate
    ) {
        self.journal = BootJournal(runtimeDirectory: runtimeDirectory, limit: maxMeasurements)
        self.hostBoot = hostBoot
        self.logger = logger
        self.tokens = tokens
        self.policy = policy
        self.sessions = sessions
        self.gate = gate
        self.bootID = UUID().uuidString.lowercased()
    }

    /// Continues this host boot's journal, or begins one.
    func openJournal() throws {
        if let previous = try journal.load(hostBoot: hostBoot) {
            bootID = previous.boot
            logger.info(
                "continuing boot \(previous.boot) of this host boot with \(previous.entries.count) measurements"
            )
            record = BootRecord(
                measurements: previous.entries,
                earlier: previous.earlier,
                releases: previous.releases,
                started: previous.started
            )
        } else {
            try journal.start(hostBoot: hostBoot, boot: bootID)
            logger.info("new boot session \(bootID)")
        }
    }

    /// Brings the token's registers to what the journal says this host boot measured.
    func restoreRegisters(_ token: any TrustedRoot) async throws {
        if token.registers.registersPersist {
            // A TPM's PCRs survived the restart: check they are what this host boot measured.
            try await checkPersistentRegisters(token)
        } else {
            // Soft registers live in memory: rebuild them from the journal.
            for m in record.all { try await token.registers.extend(register: m.register, digest: m.digest) }
        }
    }

    /// Registers that outlive ukeyd (PCRs) must hold exactly what the journal of this host boot
    /// replays to, or the event log would not explain them and no quote could be trusted. A
    /// mismatch stops the start: something else extends those PCRs, or the TPM restarted without
    /// the host, or the journal in the runtime directory was lost.
    func checkPersistentRegisters(_ token: any TrustedRoot, completingCutExtend: Bool = true) async throws {
        let policyRegisters = policy.loaded?.registers ?? []
        if let unusable = policyRegisters.first(where: { !token.registers.usableRegisters.contains($0) }) {
            throw DaemonStartError(
                "the policy in force uses register \(unusable), which the \(token.roleBackends["registers"] ?? "") registers cannot extend (usable: \(token.registers.usableRegisters.sorted().map(String.init).joined(separator: ", "))); load a policy without it first"
            )
        }
        let all = record.all
        var replay = RegisterSet(algorithms: [.sha256])
        for m in all { try replay.extend(m.register, with: m.digest) }
        let registers = Set(policyRegisters).union(all.map(\.register))
        for register in registers.sorted() {
            let actual = try await token.registers.read(register: register, bank: .sha256)
            let expected = try replay.value(register, in: .sha256)
            if actual == expected { continue }
            // The journal is written ahead of the extend: after a crash between the two, the PCR
            // is one measurement behind. That measurement was never answered; complete it.
            if completingCutExtend, let last = all.last, last.register == register {
                var before = RegisterSet(algorithms: [.sha256])
                for m in all.dropLast() { try before.extend(m.register, with: m.digest) }
                if try actual == before.value(register, in: .sha256) {
                    try await token.registers.extend(register: register, digest: last.digest)
                    logger.notice(
                        "completed the extend of \(last.entity)/\(last.component) into PCR \(register), cut short by a stop"
                    )
                    continue
                }
            }
            throw DaemonStartError(
                "PCR \(register) holds \(actual.hex) but the \(all.count) measurements ukey recorded this host boot replay to \(expected.hex): something else extends that PCR, or the TPM restarted without the host, or \(journal.path) was lost. ukeyd will not vouch for this boot: restart the host, or give ukey's entities PCRs nothing else uses"
            )
        }
        logger.info(
            "PCRs \(registers.sorted().map(String.init).joined(separator: ", ")) match the \(all.count) measurements of this host boot"
        )
    }

    /// Recomputes the chain of this boot from the measurements under the policy in force. The
    /// chain is a pure function of (policy, measurements), so a policy reload re-judges the same
    /// measurements; registers and the event log are what was measured and stay as they are.
    func rebuildChain() {
        guard let loaded = policy.loaded else {
            chain = nil
            return
        }
        var rebuilt = BootChain(expected: loaded.expected, bootID: bootID)
        // The registers' banks: SHA-256, and SM3 where [token] banks adds it.
        var log = EventLog(banks: tokens.current?.registers.banks ?? [.sha256], vendorInfo: "ukey boot \(bootID)")
        for m in record.earlier {
            // Still in the PCRs, so still in the log that explains them; judged by no chain.
            log.appendMeasurement(
                register: m.register,
                digest: m.digest,
                description: "earlier session: \(m.entity)/\(m.component)"
            )
        }
        var pendingReleases = record.releases[...]
        for (index, m) in record.measurements.enumerated() {
            while let release = pendingReleases.first, release.after <= index {
                _ = try? rebuilt.release(entity: release.entity)
                pendingReleases = pendingReleases.dropFirst()
            }
            // The log says what was extended where; the chain judges it under the policy now in force
            // (a measurement of an entity this policy does not know is logged but judges nothing).
            log.appendMeasurement(register: m.register, digest: m.digest, description: "\(m.entity)/\(m.component)")
            _ = try? rebuilt.measure(entity: m.entity, component: m.component, digest: m.digest, sealed: m.sealed)
        }
        for release in pendingReleases { _ = try? rebuilt.release(entity: release.entity) }
        chain = rebuilt
        eventLog = log
    }

    /// Publishes what `CheckExec` reads: the whitelist, the VMs trusted now, the mode.
    func publishRuntime() {
        guard let loaded = policy.loaded else {
            runtime.withLock { $0 = nil }
            return
        }
        let trusted = Set(loaded.whitelist.vmNames.filter { chain?.state(of: $0) == .trusted })
        let basis = RuntimeView.Basis(policySignature: loaded.signature, trusted: trusted, mode: policy.mode)
        if basis != runtimeBasis {
            runtimeBasis = basis
            runtimeGeneration += 1
        }
        let view = RuntimeView(
            whitelist: loaded.whitelist,
            trusted: trusted,
            mode: policy.mode,
            generation: runtimeGeneration
        )
        runtime.withLock { $0 = view }
    }

    /// The chain's verdict on a measurement; mutated in place (the chain's state is large).
    func judge(
        entity: String,
        component: String,
        digest: UkeyCore.Digest,
        sealed: UkeyCore.Digest?
    ) throws -> MeasurementOutcome? {
        try chain?.measure(entity: entity, component: component, digest: digest, sealed: sealed)
    }

    /// The event log's digest, computed once per change of the log.
    func eventLogDigestNow() -> UkeyCore.Digest {
        if let eventLogDigest { return eventLogDigest }
        let digest = UkeyCore.Digest.of(eventLog.serialized())
        eventLogDigest = digest
        return digest
    }

    /// An entity's VM stopped: it (and what it loaded) is measured afresh on its next start,
    /// unless it was found untrusted in this boot. Written to the journal first, so a restarted
    /// ukeyd replays it in its place among the measurements. Inside the gate.
    func release(entity: String) throws(APIError) -> BootChain.Release {
        guard var updated = chain else { throw .noPolicy }
        let result: BootChain.Release
        do {
            result = try updated.release(entity: entity)
        } catch {
            throw .unknownEntity(entity)
        }
        if case .released = result {
            do {
                try journal.appendRelease(entity: entity)
            } catch {
                logger.error("cannot record the release of \(entity): \(error)")
                throw .internalError
            }
            record.releases.append((record.measurements.count, entity))
            record.started.remove(entity)
            chain = updated
            releases.withLock { $0[entity, default: 0] += 1 }
        }
        return result
    }

    /// A new boot session: registers zeroed (soft) or kept with the earlier measurements in the
    /// log (PCRs reset only with the host), in the gate.
    func reset(token: any TrustedRoot) async throws -> String {
        try await gate.serialized { try await resetInGate(token: token) }
    }

    private func resetInGate(token: any TrustedRoot) async throws -> String {
        let newBoot = UUID().uuidString.lowercased()
        if token.registers.registersPersist {
            try journal.appendReset(boot: newBoot)
            record.earlier += record.measurements
        } else {
            try journal.start(hostBoot: hostBoot, boot: newBoot)
            record.earlier = []
        }
        _ = try await token.registers.reset(bootID: newBoot)
        bootID = newBoot
        record.measurements = []
        record.releases = []
        record.started = []
        rebuildChain()
        return newBoot
    }
}

/// The measurements of this host boot, as the journal replays them.
struct BootRecord {
    var measurements: [BootJournal.Measurement] = []
    /// Measurements of earlier boot sessions of this host boot that are still in registers which
    /// cannot be reset (a TPM's PCRs): in the event log, not in the chain.
    var earlier: [BootJournal.Measurement] = []
    /// Releases in this boot session, each after so many of `measurements` (replayed in order).
    var releases: [(after: Int, entity: String)] = []
    /// VMs whose QEMU came up on what was measured for them, not released since: their writable
    /// state is sealed at their release (`BootService+Seal.swift`).
    var started: Set<String> = []

    var all: [BootJournal.Measurement] { earlier + measurements }
    var count: Int { earlier.count + measurements.count }
}
