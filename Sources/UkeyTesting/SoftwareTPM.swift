import Foundation

/// A swtpm of the test's own on a Unix socket in a temporary directory: a fresh TPM (a fresh
/// "machine") per instance, stopped by its PID. With CI=true a missing swtpm fails the test.
public final class SoftwareTPM: @unchecked Sendable {
    // @unchecked: the process handle is only touched by the test that owns this object.
    public static let tool = ExternalTool("swtpm")
    public let directory: TemporaryDirectory
    private var process: Process
    public var socketPath: String { directory.file("swtpm.sock") }
    /// The TCTI string tpm2-tss and tpm2-tools take.
    public var tcti: String { "swtpm:path=\(socketPath)" }

    /// The local CA's certificate that signed the EK certificates, when `manufactured`.
    public var manufacturerCertificate: String { directory.file("ca/issuercert.pem") }

    /// A fresh TPM; `manufactured`, it is first set up as a vendor would, by `swtpm_setup
    /// --create-ek-cert` with a local CA of its own (RSA 2048 and ECC EKs and their certificates in
    /// NV, the CA's certificate at `manufacturerCertificate`).
    public init(manufactured: Bool = false) throws {
        directory = try TemporaryDirectory("ukey-swtpm")
        process = Process()
        if manufactured { try manufacture() }
        try launch()
    }

    private func manufacture() throws {
        guard let setup = ExternalTool("swtpm_setup").path, let localCA = ExternalTool("swtpm_localca").path else {
            throw ExternalTool.Missing(description: "swtpm_setup and swtpm_localca (Debian's swtpm-tools) are needed")
        }
        let ca = directory.file("ca")
        try FileManager.default.createDirectory(atPath: ca, withIntermediateDirectories: true)
        try """
        statedir = \(ca)
        signingkey = \(ca)/signkey.pem
        issuercert = \(ca)/issuercert.pem
        certserial = \(ca)/certserial

        """.write(toFile: directory.file("localca.conf"), atomically: true, encoding: .utf8)
        try "--platform-manufacturer ukey\n--platform-version 1\n--platform-model test\n".write(
            toFile: directory.file("localca.options"),
            atomically: true,
            encoding: .utf8
        )
        try """
        create_certs_tool = \(localCA)
        create_certs_tool_config = \(directory.file("localca.conf"))
        create_certs_tool_options = \(directory.file("localca.options"))
        active_pcr_banks = sha256

        """.write(toFile: directory.file("setup.conf"), atomically: true, encoding: .utf8)
        let run = Process()
        run.executableURL = URL(fileURLWithPath: setup)
        run.arguments = [
            "--tpm2", "--tpmstate", directory.path, "--create-ek-cert", "--config", directory.file("setup.conf"),
        ]
        let log = Pipe()
        run.standardOutput = log
        run.standardError = log
        try run.run()
        let output = log.fileHandleForReading.readDataToEndOfFile()
        run.waitUntilExit()
        guard run.terminationStatus == 0 else {
            throw TestDaemonError("swtpm_setup failed: \(String(decoding: output, as: UTF8.self))")
        }
    }

    private func launch() throws {
        guard let tool = Self.tool.path else {
            throw ExternalTool.Missing(description: "swtpm is not installed but CI=true requires it")
        }
        try? FileManager.default.removeItem(atPath: socketPath)
        try? FileManager.default.removeItem(atPath: socketPath + ".ctrl")
        let arguments = [
            "socket", "--tpm2", "--tpmstate", "dir=\(directory.path)",
            "--server", "type=unixio,path=\(socketPath)",
            "--ctrl", "type=unixio,path=\(socketPath).ctrl",
            "--flags", "not-need-init,startup-clear",
        ]
        process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready when its socket accepts a connection (the file appears at bind, before listen).
        for _ in 0..<250 {
            if FileManager.default.fileExists(atPath: socketPath + ".ctrl") && Self.accepts(socketPath) { return }
            guard process.isRunning else { break }
            usleep(20_000)
        }
        stop()
        throw TestDaemonError("swtpm did not come up in \(directory.path)")
    }

    /// Whether a Unix socket at `path` accepts a connection now (closed again at once).
    static func accepts(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        } == 0
    }

    /// The same TPM (its persistent state kept) powered up again: PCRs are back at zero, as after
    /// a reboot of its machine.
    public func restart() throws {
        stop()
        try launch()
    }

    public var isRunning: Bool { process.isRunning }

    /// Freezes swtpm (SIGSTOP): commands sent to it now wait for an answer that does not come.
    public func pause() {
        kill(process.processIdentifier, SIGSTOP)
    }

    /// The TPM dies at once (SIGKILL, even while paused: a command in flight is never answered)
    /// and comes back with its persistent state, PCRs at zero.
    public func crashAndRestart() throws {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try launch()
    }

    /// SIGTERM; swtpm finishes only once its client has gone, so after 2 s it gets SIGKILL.
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<100 where process.isRunning { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}
