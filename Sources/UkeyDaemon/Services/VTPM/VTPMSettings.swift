import Foundation

/// Where ukeyd keeps and runs its VMs' vTPMs (`[vtpm]` in ukeyd.toml).
public struct VTPMSettings: Sendable, Hashable {
    /// Each VM's swtpm state, in `<state>/<vm>/` (the vTPM user's, 0700), encrypted. Beside
    /// ukeyd's own state directory, not in it: swtpm runs as `user`, who must reach it, and
    /// ukeyd's is root's alone.
    public var stateDirectory: String
    /// Who swtpm runs as (`--runas`): never root, since a guest talks to it. swtpm_setup runs as
    /// root (it calls back into ukeyd's socket) and the state is then given to this user.
    public var user = "tss"
    /// Each VM's control socket, `<sockets>/<vm>.sock`: what the domain's
    /// `<tpm><backend type='external'><source path=.../>` names.
    public var socketDirectory: String
    public var swtpm = "/usr/bin/swtpm"
    public var swtpmSetup = "/usr/bin/swtpm_setup"
    /// swtpm_setup's certificate tool: `ukey-vtpm-certs`, beside ukeyd by default.
    public var certificateTool: String
    /// ukeyd's own socket, which the certificate tool calls back on.
    public var daemonSocket: String
    /// The group QEMU runs in: it may connect to the control sockets.
    public var hypervisorGroup: String?

    public init(
        stateDirectory: String,
        runtimeDirectory: String,
        daemonSocket: String,
        hypervisorGroup: String? = nil
    ) {
        self.stateDirectory = stateDirectory + "-vtpm"
        self.socketDirectory = runtimeDirectory + "/vtpm"
        self.daemonSocket = daemonSocket
        self.hypervisorGroup = hypervisorGroup
        // Beside ukeyd (a build), else in bin/ beside its sbin/ (the package: /usr/sbin/ukeyd,
        // /usr/bin/ukey-vtpm-certs).
        let directory = URL(fileURLWithPath: CommandLine.arguments.first ?? "/usr/sbin/ukeyd")
            .resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [
            directory.appendingPathComponent("ukey-vtpm-certs").path,
            directory.deletingLastPathComponent().appendingPathComponent("bin/ukey-vtpm-certs").path,
        ]
        certificateTool = candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    public func socket(of vm: String) -> String { socketDirectory + "/" + vm + ".sock" }
    public func state(of vm: String) -> String { stateDirectory + "/" + vm }
}
