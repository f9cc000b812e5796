import Foundation
import UkeyClient
import UkeyVarlink

/// Which token backend a test daemon runs on. `UKEY_TEST_BACKEND=tpm` runs every daemon test on
/// the tpm backend (registers and keys), each daemon with a swtpm of its own;
/// `UKEY_TEST_BACKEND=pcsc` on the card (keys and store) that make test enrols in its pcscd;
/// `UKEY_TEST_BACKEND=sm2` on the soft token initialised with SM2 keys (`--algorithm sm2`, the
/// default ID), with an SM3 register bank, where the fixture's policy expects SM3 digests.
/// `make test` runs the daemon suites all four ways.
public enum TestBackend: String, Sendable {
    case soft
    case tpm
    case pcsc
    case sm2

    /// The backend serving each role, as `Token.Info` reports it.
    public var roleNames: [String: String] {
        switch self {
        case .soft, .sm2: ["registers": "soft", "keys": "soft", "users": "soft", "store": "device-key"]
        case .tpm: ["registers": "tpm", "keys": "tpm", "users": "soft", "store": "tpm"]
        case .pcsc: ["registers": "soft", "keys": "pcsc", "users": "pcsc", "store": "pcsc"]
        }
    }

    /// The backend's name as `Token.Info` reports it (an SM2 token is a soft one).
    public var infoName: String { self == .sm2 ? "soft" : rawValue }

    /// What the token's keys sign with, as replies name it.
    public var signatureAlgorithm: String { self == .sm2 ? "sm2-sm3" : "ecdsa-p256-sha256" }

    public static var fromEnvironment: TestBackend {
        ProcessInfo.processInfo.environment["UKEY_TEST_BACKEND"].flatMap(TestBackend.init(rawValue:)) ?? .soft
    }
}

/// A real `ukeyd` on a temporary socket, with temporary state and runtime directories: tests talk
/// to it over its socket exactly as the hypervisor does. Stopped by PID when the test ends.
public final class TestDaemon: @unchecked Sendable {
    // @unchecked: the child handle is only touched by the test that owns this object.
    public let directory: TemporaryDirectory
    public var stateDirectory: String { directory.file("state") }
    public var runtimeDirectory: String { directory.file("run") }
    public var socketPath: String { directory.file("run/ukeyd.sock") }
    public var logPath: String { directory.file("ukeyd.log") }
    /// What `start` passes after the directories (a test may change them before a restart).
    public var extraArguments: [String]
    private var process: Process?
    /// The daemon's own swtpm, on the tpm backend.
    public let tpm: SoftwareTPM?
    public let backend: TestBackend

    /// `manufacturedTPM`: on the tpm backend, a swtpm with EK certificates, as a vendor ships it.
    public init(
        arguments: [String] = [],
        backend: TestBackend = .fromEnvironment,
        manufacturedTPM: Bool = false
    ) throws {
        directory = try TemporaryDirectory("ukeyd")
        self.backend = backend
        switch backend {
        case .tpm:
            let tpm = try SoftwareTPM(manufactured: manufacturedTPM)
            self.tpm = tpm
            extraArguments = arguments + ["--registers", "tpm", "--keys", "tpm", "--tcti", tpm.tcti]
        case .pcsc:
            // The cards make test enrolled: ukeyd's keys card (its PIN in card.pin, no user's),
            // and alice's and bob's own (ukeyctl card enroll --user), each in a reader of vpcd.
            tpm = nil
            let peer = try VirtualCardPeer.requireDirectory()
            extraArguments =
                arguments + [
                    "--keys", "pcsc", "--users", "pcsc", "--store", "pcsc",
                    "--pcsc-reader", VirtualCardPeer.keysReader, "--pcsc-pin-file", "\(peer)/card.pin",
                ]
        case .soft:
            tpm = nil
            extraArguments = arguments
        case .sm2:
            tpm = nil
            extraArguments = arguments + ["--algorithm", "sm2", "--banks", "sha256,sm3"]
        }
        try start()
    }

    /// Starts (or restarts) the daemon and waits until its socket answers.
    public func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: PackagePaths.builtProduct("ukeyd"))
        process.arguments =
            [
                "--state-dir", stateDirectory, "--runtime-dir", runtimeDirectory, "--socket", socketPath, "--log-level",
                "debug",
            ] + extraArguments
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let deadline = Date() + 20
        while Date() < deadline {
            if let connection = try? VarlinkConnection(path: socketPath, timeout: 5),
                (try? connection.call("org.varlink.service.GetInfo")) != nil
            {
                return
            }
            guard process.isRunning else { break }
            usleep(20_000)
        }
        throw TestDaemonError("ukeyd did not come up; its log:\n\(self.log())")
    }

    public var pid: Int32 { process?.processIdentifier ?? 0 }

    /// SIGTERM, then wait: the graceful stop.
    public func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    /// SIGKILL, then wait: the crash.
    public func kill9() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public var exitStatus: Int32? {
        guard let process, !process.isRunning else { return nil }
        return process.terminationStatus
    }

    /// The signal that ended the daemon, or nil if it is running or exited by itself.
    public var terminatingSignal: Int32? {
        guard let process, !process.isRunning, process.terminationReason == .uncaughtSignal else { return nil }
        return process.terminationStatus
    }

    public func connect(timeout: TimeInterval = 30) throws -> VarlinkConnection {
        try VarlinkConnection(path: socketPath, timeout: timeout)
    }

    /// One call on a fresh connection.
    @discardableResult
    public func call(_ method: String, _ parameters: [String: JSONValue] = [:]) throws -> [String: JSONValue] {
        try connect().call(method, parameters)
    }

    public func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    deinit {
        stop()
        tpm?.stop()
    }
}

public struct TestDaemonError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
