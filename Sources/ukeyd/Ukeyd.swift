import ArgumentParser
import Foundation
import Logging
import NIOCore
import UkeyDaemon
import UkeyStore
import UkeyToken

/// `ukeyd`: the trusted root of a KVM host, serving varlink on a Unix socket.
/// The composition root: the only place that picks a concrete token backend.
@main
struct Ukeyd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ukeyd",
        abstract: "The ukey daemon: boot-chain measurement, authentication, whitelisting, attestation over varlink.",
        version: Dispatcher.version
    )

    @Option(help: "The sealed state directory (0700).")
    var stateDir = "/var/lib/ukey"

    @Option(help: "The per-boot runtime directory (a tmpfs that a host reboot empties).")
    var runtimeDir = "/run/ukey"

    @Option(help: "The socket path.")
    var socket = "/run/ukey/ukeyd.sock"

    @Option(help: "The socket's mode, octal.")
    var socketMode = "0660"

    @Option(help: "The group that owns the socket.")
    var socketGroup: String?

    @Option(help: "Members of this group get the admin role (uid 0 always has it).")
    var adminGroup = "ukey-admin"

    @Option(help: "Members of this group get the hypervisor role (uid 0 always has it).")
    var hypervisorGroup = "libvirt-qemu"

    @Option(help: "Seconds a connection may stay silent before it is closed.")
    var idleTimeout = 60

    @Option(help: "Connections served at once; more are refused with an error.")
    var maxConnections = 1024

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    func run() async throws {
        var logger = Logger(label: "ukeyd")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        guard let mode = mode_t(socketMode, radix: 8), mode & 0o7777 == mode else {
            throw ValidationError("--socket-mode must be octal, such as 0660")
        }
        // Signals: SIGTERM and SIGINT stop the daemon after in-flight calls.
        let stop = SignalWaiter(signals: [SIGTERM, SIGINT])

        do {
            try StatePermissions.ensureDirectory(stateDir)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        let provider = SoftTokenProvider(configuration: SoftToken.Configuration(stateDirectory: stateDir))
        let core = DaemonCore(
            provider: provider,
            paths: .init(stateDirectory: stateDir, runtimeDirectory: runtimeDir),
            logger: logger
        )
        do {
            try await core.start()
        } catch {
            // Fail closed: a store or policy that does not verify stops the daemon, saying why.
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }

        var server = VarlinkServer.Configuration(socketPath: socket)
        server.socketMode = mode
        server.socketGroup = socketGroup
        server.idleTimeout = .seconds(Int64(idleTimeout))
        server.maxConnections = maxConnections
        server.activatedSocket = SystemdIntegration.activatedSocket()
        let readyLogger = logger
        let listener = VarlinkServer(
            configuration: server,
            dispatcher: Dispatcher(core: core),
            roles: RolePolicy(adminGroup: adminGroup, hypervisorGroup: hypervisorGroup),
            logger: logger
        )
        try await listener.run(
            ready: {
                SystemdIntegration.notify("READY=1")
                readyLogger.notice("ukeyd \(Dispatcher.version) ready")
            },
            shutdown: { await stop.wait() }
        )
    }
}
