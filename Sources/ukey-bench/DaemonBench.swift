import UkeyAPI
import Crypto
import Foundation
import UkeyClient
import UkeyCore
import UkeyPolicy
import UkeyToken
import UkeyVarlink

/// Benchmarks through a real ukeyd (release build) over its socket.
enum DaemonBench {
    /// Starts ukeyd with its runtime directory on tmpfs (as /run is in production), provisions it
    /// with the demo policy, and returns the socket and a stop function.
    static func start(
        binary: String,
        policy: String,
        arguments: [String] = [],
        name: String = "soft"
    ) throws -> (socket: String, pid: Int32, signer: P256.Signing.PrivateKey, stop: () -> Void) {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let root = "\(base)/ukey-bench-daemon-\(name)-\(getpid())"
        try FileManager.default.createDirectory(
            atPath: root,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let socket = "\(root)/run/ukeyd.sock"
        // Every Measure --path hashes the file: the figure is ukeyd's hashing, not its
        // measurement cache (bench-vm-life.sh measures that).
        let config = "\(root)/ukeyd.toml"
        try Data("[boot]\nreuse-measurements = false\n".utf8).write(to: URL(fileURLWithPath: config))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments =
            [
                "--config", config, "--state-dir", "\(root)/state", "--runtime-dir", "\(root)/run", "--socket", socket,
                "--log-level", "error",
            ] + arguments
        try process.run()
        var up = false
        for _ in 0..<400 where !up {
            up = (try? VarlinkConnection(path: socket).call(VarlinkService.GetInfo.self)) != nil
            if !up { usleep(25_000) }
        }
        guard up else { throw BenchError("ukeyd did not start") }
        let signer = P256.Signing.PrivateKey()
        let certificate = try IdentityCA.makeRoot(key: signer, commonName: "bench signer", now: Date())
        let admin = try VarlinkConnection(path: socket)
        _ = try admin.call(
            Admin.Initialize.self,
            .init(soPIN: "bench-so-pin", policySigner: try IdentityCA.pem(certificate))
        )
        let signature = try signer.signature(for: SHA256.hash(data: Array(policy.utf8))).derRepresentation
        _ = try admin.call(Admin.LoadPolicy.self, .init(policy: policy, signature: Array(signature)))
        return (
            socket, process.processIdentifier, signer,
            {
                kill(process.processIdentifier, SIGTERM)
                process.waitUntilExit()
                try? FileManager.default.removeItem(atPath: root)
            }
        )
    }

    /// Calls per second for `call`, pipelined in windows of 64 on each of `connections` connections.
    static func rate(socket: String, connections: Int, seconds: Double, call: VarlinkCall) async throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        // The 64 calls are encoded once and written in one go, as a load generator does, so the
        // figure is the daemon's cost per call and not also this client's encoding of it.
        let burst = Array((0..<64).map { _ in VarlinkFraming.frame(VarlinkCodec.encode(call)) }.joined())
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    let connection = try VarlinkConnection(path: socket)
                    var count = 0
                    while clock.now - start < .seconds(seconds) {
                        try connection.sendRaw(burst)
                        for _ in 0..<64 {
                            let reply = try connection.receive()
                            if let error = reply.error { throw BenchError("\(call.method): \(error)") }
                        }
                        count += 64
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = clock.now - start
        return Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Latency percentiles of single, unpipelined calls on one connection, in microseconds.
    static func latency(socket: String, count: Int, call: VarlinkCall) throws -> (p50: Double, p99: Double) {
        let connection = try VarlinkConnection(path: socket)
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<count {
            let start = clock.now
            try connection.send(call)
            _ = try connection.receive()
            let elapsed = clock.now - start
            samples.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
        }
        samples.sort()
        return (samples[count / 2], samples[count * 99 / 100])
    }

    /// Seconds to hash `path` with the digester ukeyd uses, without the socket.
    static func hashInProcess(path: String) throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        _ = try FileDigester.digest(ofFileAt: path)
        let elapsed = clock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Seconds for ukeyd to hash `path` in a Measure call.
    static func measurePath(socket: String, path: String) throws -> Double {
        let connection = try VarlinkConnection(path: socket, timeout: 600)
        let clock = ContinuousClock()
        let start = clock.now
        _ = try connection.call(Boot.Measure.self, .init(entity: "vmm", component: "kernel", path: path))
        let elapsed = clock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
