import ArgumentParser
import Foundation
import Logging
import NIOCore
import UkeyConfig
import UkeyDaemon
import UkeyPCSC
import UkeyStore
import UkeyTPM
import UkeyToken

/// `ukeyd`: the trusted root of a KVM host, serving varlink on a Unix socket.
/// The composition root: the only place that picks a concrete token backend.
@main
struct Ukeyd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ukeyd",
        abstract: "The ukey daemon: boot-chain measurement, authentication, whitelisting, attestation over varlink.",
        discussion:
            "Settings come from --config (default /etc/ukey/ukeyd.toml, if present); flags override it. SIGHUP re-reads it.",
        version: DaemonVersion.version
    )

    static let defaultConfig = "/etc/ukey/ukeyd.toml"

    @Option(help: "The TOML config file (default \(defaultConfig), used if it exists).")
    var config: String?

    @Option(help: "The sealed state directory (0700). Default /var/lib/ukey.")
    var stateDir: String?

    @Option(help: "The per-boot runtime directory (a tmpfs that a host reboot empties). Default /run/ukey.")
    var runtimeDir: String?

    @Option(help: "The soft registers' banks, comma-separated (sha256 always; add sm3 for a policy with SM3 digests).")
    var banks: String?

    @Option(help: "The token's key algorithm at Initialize: p256 (default) or sm2 (SM2-with-SM3, every role soft).")
    var algorithm: String?

    @Option(help: "The SM2 distinguishing ID every SM2 signature carries. Default 1234567812345678.")
    var sm2Id: String?

    @Option(help: "Where VMs' guard channels are bound, one <vm>.sock each. Default: guard/ in the runtime directory.")
    var guestSocketDir: String?

    @Option(help: "Where VMs' vTPM control sockets are, one <vm>.sock each. Default: vtpm/ in the runtime directory.")
    var vtpmSocketDir: String?

    @Option(help: "Where VMs' vTPM state is, one directory each. Default: the state directory's path + \"-vtpm\".")
    var vtpmStateDir: String?

    @Option(
        help:
            "The directory of signed policies; the newest is loaded at start and on SIGHUP. Default /etc/ukey/policies."
    )
    var policyDir: String?

    @Option(help: "The socket path. Default /run/ukey/ukeyd.sock.")
    var socket: String?

    @Option(help: "The socket's mode, octal. Default 0660.")
    var socketMode: String?

    @Option(help: "The group that owns the socket.")
    var socketGroup: String?

    @Option(help: "Members of this group get the admin role (uid 0 always has it). Default ukey-admin.")
    var adminGroup: String?

    @Option(help: "Members of this group get the hypervisor role (uid 0 always has it). Default libvirt-qemu.")
    var hypervisorGroup: String?

    @Option(help: "Seconds a connection may stay silent before it is closed. Default 60.")
    var idleTimeout: Int?

    @Option(help: "Connections served at once; more are refused with an error. Default 1024.")
    var maxConnections: Int?

    @Option(help: "Connections one uid without the admin or hypervisor role may hold. Default 32.")
    var maxConnectionsPerUid: Int?

    @Option(help: "Measurements one host boot may record; past it they are refused, never forgotten. Default 1000000.")
    var maxMeasurements: Int?

    @Option(help: "Bytes past which the audit log is archived and a new file continues it; 0 never. Default 67108864.")
    var auditMaxSize: Int?

    @Option(
        help: "Audit archives kept; at a rotation older ones are removed, each removal recorded first. Default 0: all."
    )
    var auditKeepArchives: Int?

    @Option(
        help:
            "Bytes the audit archives and the current file may take; at a rotation the oldest archives past it are removed, each recorded first. Default 0: any."
    )
    var auditMaxTotal: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error. Default info.")
    var logLevel: String?

    @Option(help: "The registers role's backend: soft or tpm. Default soft.")
    var registers: String?

    @Option(help: "The keys role's backend: soft, tpm or pcsc. Default soft.")
    var keys: String?

    @Option(help: "The users role's backend: soft or pcsc. Default soft.")
    var users: String?

    @Option(help: "What protects the sealed store's key: device-key, tpm or pcsc. Default: where the keys are.")
    var store: String?

    @Option(help: "Part of the card reader's name, for roles on a card. Default: the first reader.")
    var pcscReader: String?

    @Option(help: "The file with the card's PIN (0600). Default /etc/ukey/card.pin.")
    var pcscPinFile: String?

    @Option(help: "The TPM's TCTI: device:/dev/tpmrm0 (default) or swtpm:path=SOCKET.")
    var tcti: String?

    @Flag(
        help:
            "Trust the demo policy signer of keys/demo/, whose private key is public: for make demo and the tests only, never in production."
    )
    var allowDemoKeys = false

    /// The config file's settings with this command line's flags over them.
    func settings() throws -> DaemonSettings {
        var settings = DaemonSettings()
        let path = config ?? Self.defaultConfig
        if config != nil || FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
            else {
                throw ValidationError("cannot read the config file \(path)")
            }
            do {
                try settings.apply(try ConfigFile(parsing: text))
            } catch {
                throw ValidationError("\(path): \(error)")
            }
        }
        if let stateDir { settings.stateDirectory = stateDir }
        if let runtimeDir { settings.runtimeDirectory = runtimeDir }
        if let banks { settings.banks = try DaemonSettings.banks(banks.split(separator: ",").map(String.init)) }
        if algorithm != nil || sm2Id != nil {
            settings.algorithm = try DaemonSettings.algorithm(algorithm ?? "sm2", sm2ID: sm2Id)
        }
        if let vtpmSocketDir {
            guard vtpmSocketDir.hasPrefix("/"), vtpmSocketDir.utf8.count < 80 else {
                throw ValidationError("--vtpm-socket-dir must be an absolute path under 80 bytes")
            }
            settings.vtpmSocketDirectory = vtpmSocketDir
        }
        if let vtpmStateDir {
            guard vtpmStateDir.hasPrefix("/") else {
                throw ValidationError("--vtpm-state-dir must be an absolute path")
            }
            settings.vtpmStateDirectory = vtpmStateDir
        }
        if let guestSocketDir {
            guard guestSocketDir.hasPrefix("/"), guestSocketDir.utf8.count < 90 else {
                throw ValidationError("--guest-socket-dir must be an absolute path under 90 bytes")
            }
            settings.guestSocketDirectory = guestSocketDir
        }
        if let policyDir { settings.policyDirectory = policyDir }
        if let socket { settings.socket = socket }
        if let socketMode { settings.socketMode = socketMode }
        if let socketGroup { settings.socketGroup = socketGroup }
        if let adminGroup { settings.adminGroup = adminGroup }
        if let hypervisorGroup { settings.hypervisorGroup = hypervisorGroup }
        if let idleTimeout { settings.idleTimeout = idleTimeout }
        if let maxConnections { settings.maxConnections = maxConnections }
        if let auditMaxSize {
            guard auditMaxSize == 0 || auditMaxSize >= AuditSettings.minMaxSize else {
                throw ValidationError("--audit-max-size must be 0 or at least \(AuditSettings.minMaxSize)")
            }
            settings.audit.maxSize = auditMaxSize
        }
        if let auditKeepArchives {
            guard auditKeepArchives >= 0 else { throw ValidationError("--audit-keep-archives must be 0 (all) or more") }
            settings.audit.keepArchives = auditKeepArchives
        }
        if let auditMaxTotal {
            guard auditMaxTotal == 0 || auditMaxTotal >= 2 * settings.audit.maxSize else {
                throw ValidationError(
                    "--audit-max-total must be 0 (any) or at least twice the audit max-size (\(2 * settings.audit.maxSize) bytes)"
                )
            }
            settings.audit.maxTotal = auditMaxTotal
        }
        if let maxConnectionsPerUid {
            guard (1...65_536).contains(maxConnectionsPerUid) else {
                throw ValidationError("--max-connections-per-uid must be 1-65536")
            }
            settings.maxConnectionsPerUID = maxConnectionsPerUid
        }
        if let maxMeasurements {
            guard (1...100_000_000).contains(maxMeasurements) else {
                throw ValidationError("--max-measurements must be 1-100000000")
            }
            settings.maxMeasurements = maxMeasurements
        }
        if let logLevel { settings.logLevel = logLevel }
        do {
            if let registers { try settings.setBackend("registers", registers) }
            if let keys { try settings.setBackend("keys", keys) }
            if let users { try settings.setBackend("users", users) }
            if let store { try settings.setBackend("store", store) }
        } catch {
            throw ValidationError("\(error)")
        }
        if let tcti { settings.tcti = tcti }
        if let pcscReader { settings.pcscReader = pcscReader }
        if let pcscPinFile { settings.pcscPINFile = pcscPinFile }
        return settings
    }

    func run() async throws {
        let settings = try settings()
        var logger = Logger(label: "ukeyd")
        logger.logLevel = Logger.Level(rawValue: settings.logLevel) ?? .info
        guard let mode = mode_t(settings.socketMode, radix: 8), mode & 0o7777 == mode else {
            throw ValidationError("the socket mode must be octal, such as 0660")
        }
        // Signals: SIGTERM and SIGINT stop the daemon after in-flight calls; SIGHUP reloads.
        let stop = SignalWaiter(signals: [SIGTERM, SIGINT])
        let reload = SignalWaiter(signals: [SIGHUP])

        do {
            try StatePermissions.ensureDirectory(settings.stateDirectory)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        if let refusal = settings.token.refusal ?? settings.algorithmRefusal {
            logger.critical("cannot start: \(refusal)")
            throw ExitCode(1)
        }
        let provider = TrustedRootBuilder(
            composition: settings.token,
            stateDirectory: settings.stateDirectory,
            tcti: settings.tcti,
            pcscReader: settings.pcscReader,
            pcscPINFile: settings.pcscPINFile,
            banks: settings.banks,
            tpmRegisters: settings.tpmRegisters,
            algorithm: settings.algorithm
        )
        let roles = settings.token.roleNames.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
            separator: ", "
        )
        logger.info(
            "token: \(roles)\(settings.token.usesTPM ? "; TPM at \(settings.tcti)" : "")\(settings.token.usesCard ? "; card in \(settings.pcscReader ?? "the first reader")" : "")"
        )
        // Root needs no supplementary groups, and a caller's file must be judged by its rights alone.
        PeerFileHasher.dropSupplementaryGroups()
        let core = await DaemonServices(
            provider: provider,
            paths: .init(
                stateDirectory: settings.stateDirectory,
                runtimeDirectory: settings.runtimeDirectory,
                policyDirectory: FileManager.default.fileExists(atPath: settings.policyDirectory)
                    ? settings.policyDirectory : nil
            ),
            logger: logger,
            audit: settings.audit,
            maxMeasurements: settings.maxMeasurements,
            reuseMeasurements: settings.reuseMeasurements,
            allowDemoKeys: allowDemoKeys,
            vtpm: settings.vtpm
        )
        do {
            try await core.start()
        } catch {
            // Fail closed: a store or policy that does not verify stops the daemon, saying why.
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }

        var server = VarlinkServer.Configuration(socketPath: settings.socket)
        server.socketMode = mode
        server.socketGroup = settings.socketGroup
        server.idleTimeout = .seconds(Int64(settings.idleTimeout))
        server.maxConnections = settings.maxConnections
        server.maxConnectionsPerUID = settings.maxConnectionsPerUID
        server.activatedSocket = SystemdIntegration.activatedSocket()
        let dispatcher = Dispatcher(services: core)
        let listener = VarlinkServer(
            configuration: server,
            dispatcher: dispatcher,
            roles: RolePolicy(adminGroup: settings.adminGroup, hypervisorGroup: settings.hypervisorGroup),
            logger: logger
        )
        let readyLogger = logger
        let reloader = Task {
            while await reload.wait() {
                do {
                    let fresh = try self.settings()
                    listener.update(
                        .init(
                            roles: RolePolicy(adminGroup: fresh.adminGroup, hypervisorGroup: fresh.hypervisorGroup),
                            maxConnections: fresh.maxConnections,
                            maxConnectionsPerUID: fresh.maxConnectionsPerUID
                        )
                    )
                } catch {
                    readyLogger.error("reload refused, the old settings stay: \(error)")
                }
                await core.reload()
            }
        }
        defer { reloader.cancel() }
        // Each VM's guard channel, served as that VM's connection.
        do {
            try GuestChannels.prepare(settings.guestSockets, hypervisorGroup: settings.hypervisorGroup)
        } catch {
            logger.critical("cannot make the guard channels' directory \(settings.guestSockets): \(error)")
            throw ExitCode(1)
        }
        let guests = Task {
            await GuestChannels(directory: settings.guestSockets, dispatcher: dispatcher, logger: logger).run()
        }
        defer { guests.cancel() }
        try await listener.run(
            ready: {
                SystemdIntegration.notify("READY=1")
                readyLogger.notice("ukeyd \(DaemonVersion.version) ready")
            },
            shutdown: { _ = await stop.wait() }
        )
        // Nothing of ours may run once the stop is under way: the process exits after this, and
        // a reload or a guest's call that reached the token then raced the C libraries' own
        // teardown (a card's pcsc-lite crashed ukeyd with SIGSEGV in exit). Each task is ended
        // and awaited, a reload in progress finishing first.
        reloader.cancel()
        guests.cancel()
        await reloader.value
        await guests.value
        await core.stop()
        // The last: no card call may be under way or start while exit tears pcsc-lite down.
        let stuck = PCSCLifetime.shared.end()
        if stuck > 0 { logger.warning("\(stuck) card call(s) still under way at exit") }
    }
}
