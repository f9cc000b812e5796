import Crypto
import Foundation
import Logging
import UkeyCodec
import UkeyToken

#if canImport(Glibc)
import Glibc
#endif

/// The vTPMs ukeyd runs: one `swtpm socket --tpm2` per VM whose entity says `vtpm: true`,
/// started only when the gate has found the VM's start trusted (`VTPM.Start`), stopped at its
/// release. Its state is encrypted with a key that lives only in the token's sealed store and
/// reaches swtpm through a pipe, so a copy of the state directory, or a start ukeyd refused,
/// gets nothing of it. Made on the first start by swtpm_setup, whose certificate tool
/// (`ukey-vtpm-certs`) asks ukeyd to certify the new EK with a one-time ticket.
actor VTPMService {
    let settings: VTPMSettings
    let logger: Logger
    /// The swtpm of each VM ukeyd started, until it exits or the VM is released.
    private var running: [String: VTPMChildProcess] = [:]
    /// The ticket of each setup under way, and its VM: `VTPM.Certify` takes no other.
    private var tickets: [String: String] = [:]

    /// How long a swtpm that cannot start (a wrong key, no user) takes to say so.
    static let settleTime: TimeInterval = 0.05

    init(settings: VTPMSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    struct Started: Sendable {
        var socket: String
        var created: Bool
        var setupMilliseconds: Int
        var startMilliseconds: Int
    }

    struct Refusal: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func keyRecord(_ vm: String) -> String { "vtpm-key.\(vm)" }
    /// A certificate issued for `vm`'s vTPM: its EK's (one per key type: swtpm_setup makes an
    /// RSA and an ECC EK) or its platform's.
    static func certificateRecord(_ vm: String, _ kind: VTPMCertificateRequest.Kind, ecc: Bool = false) -> String {
        kind == .platform ? "vtpm-platform.\(vm)" : "vtpm-ek-\(ecc ? "ecc" : "rsa").\(vm)"
    }

    /// Starts `vm`'s vTPM (made first if it has no state). The caller has checked that the VM's
    /// start is trusted: this releases the state key.
    func start(_ vm: String, token: any TrustedRoot) async throws(Refusal) -> Started {
        let socket = settings.socket(of: vm)
        if running[vm] != nil, access(socket, F_OK) == 0 {
            return Started(socket: socket, created: false, setupMilliseconds: 0, startMilliseconds: 0)
        }
        let owner = try owner()
        try prepareDirectories()
        let state = settings.state(of: vm)
        let permanent = state + "/tpm2-00.permall"
        var key = await token.daemonRecord(Self.keyRecord(vm))
        if key == nil {
            guard !FileManager.default.fileExists(atPath: permanent) else {
                throw Refusal(
                    "its vTPM state in \(state) was made with a key this token does not hold (another token's, or a lost store); move it away to make a new vTPM"
                )
            }
            let made = SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }
            do {
                try await token.setDaemonRecords([Self.keyRecord(vm): made])
            } catch {
                throw Refusal("cannot keep its vTPM key in the sealed store: \(error)")
            }
            key = made
        }
        var secret = Array(Hex.encode(key!).utf8)
        defer { for index in secret.indices { secret[index] = 0 } }

        var created = false
        var setupMilliseconds = 0
        if !FileManager.default.fileExists(atPath: permanent) {
            let began = Date()
            try await setUp(vm, state: state, secret: secret)
            try giveState(state, to: owner)
            setupMilliseconds = Int(Date().timeIntervalSince(began) * 1000)
            created = true
        }
        try giveState(state, to: owner)
        let began = Date()
        try await run(vm, state: state, socket: socket, secret: secret)
        let startMilliseconds = Int(Date().timeIntervalSince(began) * 1000)
        logger.notice(
            "vTPM of \(vm) started on \(socket)\(created ? " (state made, EK certified by the vTPM CA)" : "")"
        )
        return Started(
            socket: socket,
            created: created,
            setupMilliseconds: setupMilliseconds,
            startMilliseconds: startMilliseconds
        )
    }

    /// Stops `vm`'s vTPM, if ukeyd runs one (its VM was released). True if one was running.
    @discardableResult
    func stop(_ vm: String) async -> Bool {
        // The pid is ours until its reaper has waited for it: it cannot name another process.
        guard let child = running[vm] else { return false }
        defer { unlink(settings.socket(of: vm)) }
        kill(child.pid, SIGTERM)
        for _ in 0..<30 where running[vm]?.pid == child.pid {
            try? await Task.sleep(for: .milliseconds(100))
        }
        if running[vm]?.pid == child.pid { kill(child.pid, SIGKILL) }
        running[vm] = nil
        logger.notice("vTPM of \(vm) stopped")
        return true
    }

    /// Whether ukeyd runs a vTPM for `vm` now.
    func isRunning(_ vm: String) -> Bool { running[vm] != nil }

    /// The reaper of a swtpm saw it end (QEMU closed its socket, or it was stopped).
    private func ended(_ vm: String, pid: pid_t, status: Int32) {
        logger.info("the vTPM of \(vm) (pid \(pid)) ended, status \(status)")
        if running[vm]?.pid == pid { running[vm] = nil }
    }

    /// `VTPM.Certify`: the ticket must be the one of `vm`'s setup under way.
    func certify(
        _ request: VTPMCertificateRequest,
        ticket: String,
        token: any TrustedRoot
    ) async throws(Refusal) -> [UInt8] {
        guard let owner = tickets[ticket], owner == request.vm else {
            throw Refusal(
                "no vTPM setup of \(request.vm) is under way with this ticket: ukeyd certifies only the vTPMs it makes"
            )
        }
        do {
            let certificate = try await token.issueVTPMCertificate(request)
            let der = try IdentityCA.der(certificate)
            var ecc = false
            if case .ecc = request.endorsementKey { ecc = true }
            try await token.setDaemonRecords([Self.certificateRecord(request.vm, request.kind, ecc: ecc): der])
            return der
        } catch {
            throw Refusal("the vTPM CA cannot certify \(request.vm)'s \(request.kind.rawValue): \(error)")
        }
    }

    // MARK: steps

    /// The vTPM user's uid and gid; fail closed without one (swtpm never runs as root).
    private func owner() throws(Refusal) -> (uid: uid_t, gid: gid_t) {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwnam_r(settings.user, &entry, &buffer, buffer.count, &result) == 0, result != nil, entry.pw_uid != 0
        else {
            throw Refusal(
                "there is no unprivileged user '\(settings.user)' for swtpm to run as (a guest talks to it): create it, or name one with [vtpm] user"
            )
        }
        return (entry.pw_uid, entry.pw_gid)
    }

    /// The state directory (root's, 0711: the vTPM user reaches its own VM's directory in it, and
    /// lists nothing) and the sockets' (root's, the hypervisor group's to enter, 0750).
    private func prepareDirectories() throws(Refusal) {
        do {
            for directory in [settings.stateDirectory, settings.socketDirectory] {
                try FileManager.default.createDirectory(
                    atPath: directory,
                    withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700]
                )
            }
        } catch {
            throw Refusal("cannot make the vTPM directories: \(error)")
        }
        chown(settings.stateDirectory, 0, 0)
        chmod(settings.stateDirectory, 0o711)
        let group = settings.hypervisorGroup.flatMap(RolePolicy.groupID) ?? 0
        chown(settings.socketDirectory, 0, group)
        chmod(settings.socketDirectory, 0o750)
    }

    /// Gives the VM's state to the vTPM user (swtpm_setup made it as root).
    private func giveState(_ state: String, to owner: (uid: uid_t, gid: gid_t)) throws(Refusal) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []
        for path in [state] + names.map({ state + "/" + $0 }) where lchown(path, owner.uid, owner.gid) != 0 {
            throw Refusal("cannot give \(path) to \(settings.user): \(String(cString: strerror(errno)))")
        }
        chmod(state, 0o700)
    }

    /// The VM's control socket, bound and listening by ukeyd (root:hypervisor group, 0660) and
    /// handed to swtpm, which runs as the vTPM user and could not bind it in ukeyd's directory.
    private func listen(at path: String) throws(Refusal) -> Int32 {
        unlink(path)
        let socket = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw Refusal("cannot make a socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(socket)
            throw Refusal("the socket path \(path) is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        let group = settings.hypervisorGroup.flatMap(RolePolicy.groupID) ?? 0
        guard bound == 0, chown(path, 0, group) == 0, chmod(path, 0o660) == 0, Glibc.listen(socket, 1) == 0 else {
            let reason = String(cString: strerror(errno))
            close(socket)
            unlink(path)
            throw Refusal("cannot listen at \(path): \(reason)")
        }
        return socket
    }

    /// swtpm_setup: the state made and encrypted, the EK certified through `ukey-vtpm-certs`.
    private func setUp(_ vm: String, state: String, secret: [UInt8]) async throws(Refusal) {
        let work = settings.stateDirectory + "/.setup-" + vm
        try? FileManager.default.removeItem(atPath: work)
        try? FileManager.default.removeItem(atPath: state)
        do {
            for directory in [work, state] {
                try FileManager.default.createDirectory(
                    atPath: directory,
                    withIntermediateDirectories: false,
                    attributes: [.posixPermissions: 0o700]
                )
            }
        } catch {
            throw Refusal("cannot make \(state): \(error)")
        }
        defer { try? FileManager.default.removeItem(atPath: work) }
        guard access(settings.certificateTool, X_OK) == 0 else {
            throw Refusal("the certificate tool \(settings.certificateTool) is not there (set [vtpm] certs-tool)")
        }
        let ticket = Hex.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        tickets[ticket] = vm
        defer { tickets[ticket] = nil }
        let files = [
            "setup.conf": """
            create_certs_tool = \(settings.certificateTool)
            create_certs_tool_config = \(work)/certs.conf
            create_certs_tool_options = \(work)/certs.options
            active_pcr_banks = sha256

            """,
            "certs.conf": "socket = \(settings.daemonSocket)\nentity = \(vm)\nticket = \(ticket)\n",
            "certs.options": "",
        ]
        for (name, text) in files {
            guard
                FileManager.default.createFile(
                    atPath: work + "/" + name,
                    contents: Data(text.utf8),
                    attributes: [.posixPermissions: 0o600]
                )
            else { throw Refusal("cannot write \(work)/\(name)") }
        }
        let log = work + "/setup.log"
        let status: Int32
        do {
            let child = try VTPMChildProcess.spawn(
                settings.swtpmSetup,
                [
                    "--tpm2", "--tpmstate", state, "--create-ek-cert", "--create-platform-cert", "--lock-nvram",
                    "--config", work + "/setup.conf", "--keyfile-fd", "3", "--vmid", vm, "--logfile", log,
                ],
                secret: secret,
                log: work + "/setup.out",
                environment: VTPMChildProcess.environment(swtpm: settings.swtpm)
            )
            status = await child.exitStatus()
        } catch {
            try? FileManager.default.removeItem(atPath: state)
            throw Refusal("cannot make its vTPM: \(error)")
        }
        guard status == 0 else {
            // The certificate tool's own line says most; else swtpm_setup's last words.
            let lines = [log, work + "/setup.out"].compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }
                .joined(separator: "\n").split(separator: "\n")
            let tool = lines.filter { $0.hasPrefix("ukey-vtpm-certs: ") && !$0.contains(" certificate from ") }
            let said = (tool.isEmpty ? Array(lines.suffix(4)) : tool).joined(separator: " | ")
            try? FileManager.default.removeItem(atPath: state)
            throw Refusal("swtpm_setup failed (exit \(status)): \(said)")
        }
    }

    /// `swtpm socket` on the VM's control socket, as the vTPM user, its state decrypted with the
    /// key on descriptor 3.
    private func run(_ vm: String, state: String, socket: String, secret: [UInt8]) async throws(Refusal) {
        let listening = try listen(at: socket)
        defer { close(listening) }
        let log = settings.socketDirectory + "/" + vm + ".log"
        let child: VTPMChildProcess
        do {
            child = try VTPMChildProcess.spawn(
                settings.swtpm,
                [
                    "socket", "--tpm2", "--tpmstate", "dir=\(state),mode=0600", "--ctrl", "type=unixio,fd=4",
                    "--key", "fd=3,mode=aes-cbc,format=hex,remove=false", "--runas", settings.user, "--terminate",
                ],
                secret: secret,
                listening: listening,
                log: log,
                environment: VTPMChildProcess.environment(swtpm: settings.swtpm)
            )
        } catch {
            unlink(socket)
            throw Refusal("cannot start swtpm: \(error)")
        }
        running[vm] = child
        let reaper = Task {
            let status = await child.exitStatus()
            self.ended(vm, pid: child.pid, status: status)
        }
        // The socket is there already (ukeyd made it); a swtpm that cannot start (its key, its
        // user) says so at once. QEMU's connection is the first: ukeyd does not probe it, since
        // swtpm --terminate ends with its first client.
        for _ in 0..<Int(Self.settleTime * 50) where running[vm]?.pid == child.pid {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if running[vm]?.pid == child.pid { return }
        await reaper.value
        unlink(socket)
        let said =
            (try? String(contentsOfFile: log, encoding: .utf8))
            .map { $0.split(separator: "\n").suffix(3).joined(separator: " | ") } ?? ""
        throw Refusal("swtpm stopped as it started\(said.isEmpty ? "" : ": \(said)")")
    }
}
