import Foundation
import Logging
import UkeyAudit
import UkeyStore
import UkeyToken

/// The daemon's services, each with its own state: the token (`TokenAccess`), the policy in
/// force (`PolicyService`), the boot chain and its journal (`BootService`), user sessions
/// (`SessionService`) and the audit log (`AuditHolder`). This composes them and runs what spans
/// them: start, reload, stop, and the adoption of a policy (`PolicyAdoption.swift`).
public final class DaemonServices: Sendable {
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

    /// The measurements one host boot may record (`[boot] max-measurements`).
    public static let defaultMaxMeasurements = 1_000_000

    let paths: Paths
    let logger: Logger
    let tokens: TokenAccess
    let policy: PolicyService
    let boot: BootService
    let sessions: SessionService
    /// The audit log, open once the token is (its checkpoints need the audit key); reached
    /// without a hop through the daemon's actor: every call's records are queued on its connection.
    let audit: AuditHolder
    /// The exec guards heard from, and those lost (`GuardRegistry`).
    let guards: GuardRegistry
    /// What holds a VM's measured files to their identity until its QEMU opened them.
    let openGuard: OpenGuardHolder
    /// Read-only files hashed in this host boot, by identity (`[boot] reuse-measurements`).
    let measurementCache: MeasurementCache
    /// The attestation key a remote verifier knows this host by (`io.ukey.Attest`).
    let attestation = AttestationService()
    /// The vTPMs ukeyd runs for its VMs (`io.ukey.VTPM`).
    let vtpm: VTPMService

    /// Made on the daemon's actor, where the boot service's journal lives.
    @DaemonActor
    public init(
        provider: any TrustedRootProvider,
        paths: Paths,
        hostBootID: String = HostBoot.currentID(),
        logger: Logger,
        audit: AuditSettings = AuditSettings(),
        maxMeasurements: Int = DaemonServices.defaultMaxMeasurements,
        reuseMeasurements: Bool = true,
        allowDemoKeys: Bool = false,
        vtpm: VTPMSettings? = nil,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.paths = paths
        self.logger = logger
        self.measurementCache = MeasurementCache(enabled: reuseMeasurements)
        self.audit = AuditHolder(settings: audit)
        self.guards = GuardRegistry(clock: clock)
        let holder = self.audit
        self.openGuard = OpenGuardHolder { denial in
            logger.warning(
                "refused an open of \(denial.path) by pid \(denial.pid): it is not the file measured for \(denial.owner)'s start (\(denial.expected); found \(denial.found.map { "\($0)" } ?? "none"))"
            )
            var subject: [String: AuditValue] = [
                "path": .string(denial.path), "vm": .string(denial.owner), "pid": .int(Int(denial.pid)),
                "expected": .string("\(denial.expected)"),
            ]
            if let found = denial.found { subject["found"] = .string("\(found)") }
            _ = holder.log?.enqueue(AuditEntry(type: "open-refused", actor: .daemon, subject: subject))
        }
        self.tokens = TokenAccess(provider: provider, allowDemoKeys: allowDemoKeys)
        self.vtpm = VTPMService(
            settings: vtpm
                ?? VTPMSettings(
                    stateDirectory: paths.stateDirectory,
                    runtimeDirectory: paths.runtimeDirectory,
                    daemonSocket: paths.runtimeDirectory + "/ukeyd.sock"
                ),
            logger: logger
        )
        self.sessions = SessionService(clock: clock)
        self.policy = PolicyService(
            stateDirectory: paths.stateDirectory,
            policyDirectory: paths.policyDirectory,
            logger: logger
        )
        self.boot = BootService(
            runtimeDirectory: paths.runtimeDirectory,
            hostBoot: hostBootID,
            maxMeasurements: maxMeasurements,
            logger: logger,
            tokens: tokens,
            policy: policy,
            sessions: sessions,
            gate: SerialGate()
        )
    }

    var auditPath: String { paths.stateDirectory + "/audit.log" }

    /// Opens the token (if initialised), restores the policy in force and replays this host
    /// boot's measurements. Fails closed: a store or policy that does not verify stops the start.
    public func start() async throws {
        try StatePermissions.ensureRuntimeDirectory(paths.runtimeDirectory)
        try await boot.openJournal()
        guard tokens.provider.isInitialized() else {
            logger.notice("the token is not initialised; waiting for io.ukey.Admin.Initialize")
            return
        }
        let token = try tokens.provider.open(bootID: await boot.bootID)
        if !tokens.allowDemoKeys, DemoKeys.isDemoPolicySigner(try await token.policySigner()) {
            throw StoreError(.integrity, path: paths.stateDirectory, DemoKeys.refusal)
        }
        tokens.current = token
        try await audit.open(
            token: token,
            path: auditPath,
            stateDirectory: paths.stateDirectory,
            bootID: await boot.bootID,
            logger: logger
        )
        try await policy.restore(from: token)
        try await boot.loadSeals(from: token)
        if paths.policyDirectory != nil {
            // A bad policy in the directory is refused and recorded; the daemon starts on the old one.
            _ = try? await reloadPolicyDirectory()
        }
        try await boot.restoreRegisters(token)
        await boot.rebuildChain()
    }

    /// SIGHUP: take a newer policy from the policy directory, if there is one.
    public func reload() async {
        guard tokens.current != nil, paths.policyDirectory != nil else { return }
        _ = try? await reloadPolicyDirectory()
    }

    /// Records the daemon's stop and closes the audit log with a final checkpoint.
    public func stop() async {
        await audit.close()
    }
}
