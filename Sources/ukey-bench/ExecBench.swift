import UkeyAPI
import Crypto
import Foundation
import UkeyAudit
import UkeyClient
import UkeyCore
import UkeyPolicy
import UkeyVarlink

/// The exec path: CheckExec against the protocol floor, the whitelist in process at a
/// million entries, loading a million-entry policy, and durable audit appends.
enum ExecBench {
    /// Starts a new boot and boots the demo host over the socket by digest (every entity of the policy, parents first),
    /// logging alice in for her user VM, so `office` is trusted and its whitelist applies.
    static func bootDemoHost(socket: String, policyText: String) throws {
        let policy = try PolicyParser.parse(bytes: Array(policyText.utf8), file: "demo.yaml")
        let connection = try VarlinkConnection(path: socket)
        // A new boot: the earlier benchmarks measured other images (the 1 GiB one) into this one.
        _ = try connection.call(Boot.Reset.self)
        _ = try connection.call(Admin.AddUser.self, .init(user: "alice", pin: "alice-pin-1", roles: ["office"]))
        let session = try connection.call(Auth.Login.self, .init(user: "alice", pin: "alice-pin-1")).session
        for entity in policy.entities where entity.name != "dev" {
            for component in entity.components {
                guard let digest = component.digest else { continue }
                _ = try connection.call(
                    Boot.Measure.self,
                    .init(
                        entity: entity.name,
                        component: component.name,
                        digest: digest.description,
                        session: session
                    )
                )
            }
        }
    }

    /// Decisions per second in process over a whitelist of `entries` entries for one VM.
    static func inProcess(entries: Int) -> (perSecond: Double, buildSeconds: Double) {
        let policyText =
            "version: 1\nentities:\n  - name: vm\n    parent: root\n    kind: user-vm\n    components:\n      - name: disk\n        digest: sha256:\(String(repeating: "a", count: 64))\nruntime:\n  - vm: vm\n    default: deny\n"
        let policy = try! PolicyParser.parse(bytes: Array(policyText.utf8), file: "bench.yaml")
        let clock = ContinuousClock()
        var whitelist = Whitelist(policy)
        var queries: [(String, UkeyCore.Digest)] = []
        queries.reserveCapacity(entries)
        let build = clock.measure {
            for n in 0..<entries {
                let path = "/usr/lib/pkg-\(n % 5000)/lib\(n).so.1"
                let digest = Digest.of(Array(path.utf8))
                whitelist.add(vm: "vm", path: path, digest: digest)
                queries.append((path, digest))
            }
        }
        queries.shuffle()
        var allowed = 0
        let elapsed = clock.measure {
            for (path, digest) in queries
            where whitelist.check(vm: "vm", path: path, digest: digest, vmTrusted: true, mode: .enforce).decision
                == .allow
            {
                allowed += 1
            }
        }
        precondition(allowed == entries, "every query is a whitelisted entry")
        return (Double(entries) / seconds(elapsed), seconds(build))
    }

    /// Writes an allow-list of `entries` entries (sha256sum format) and a policy (the demo's, a
    /// version up) that pins it; returns the policy text.
    static func millionEntryPolicy(demo: String, entries: Int, directory: String) throws -> String {
        let listPath = directory + "/million.list"
        _ = FileManager.default.createFile(atPath: listPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: listPath))
        var hasher = SHA256()
        var buffer = ""
        for n in 0..<entries {
            buffer +=
                Hex.encode(SHA256.hash(data: Array("file \(n)".utf8))) + "  /usr/lib/pkg-\(n % 5000)/lib\(n).so.1\n"
            if buffer.utf8.count > 1 << 20 || n == entries - 1 {
                hasher.update(data: Array(buffer.utf8))
                try handle.write(contentsOf: Data(buffer.utf8))
                buffer = ""
            }
        }
        try handle.close()
        let digest = "sha256:" + Hex.encode(hasher.finalize())
        return
            demo
            .replacingOccurrences(of: "version: 1", with: "version: 2")
            .replacingOccurrences(
                of: "  - vm: dev\n    default: deny\n",
                with:
                    "  - vm: dev\n    default: deny\n    allow-list:\n      file: \(listPath)\n      digest: \(digest)\n"
            )
    }

    /// ukeyd's resident and peak memory, in MB, from /proc.
    static func memory(pid: Int32) -> (rss: Double, peak: Double) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Double {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// Durable audit appends per second from `writers` concurrent callers (group commit), and the
    /// peer: a loop that writes and fdatasyncs each record alone, on the same file system.
    static func auditAppends(directory: String, writers: Int, seconds duration: Double) async throws -> Double {
        let signer = P256.Signing.PrivateKey()
        struct Signer: AuditCheckpointing {
            let key: P256.Signing.PrivateKey
            func signCheckpoint(_ message: [UInt8]) async throws -> [UInt8] {
                Array(try key.signature(for: AuditCheckpoint.signingDomain + message).derRepresentation)
            }
            func sealCheckpoint(_ checkpoint: SealedCheckpoint) async throws {}
        }
        let logDirectory = directory + "/audit-\(writers)"
        try FileManager.default.createDirectory(
            atPath: logDirectory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        // As ukeyd runs it: the tail sealed (write + fdatasync) after every batch.
        let seal = try AuditTailSeal(directory: logDirectory, key: Array(repeating: 1, count: 32))
        let log = try AuditLog(
            configuration: .init(path: logDirectory + "/audit.log"),
            sealed: nil,
            checkpointing: Signer(key: signer),
            tailSeal: seal,
            problems: { _ in }
        )
        let clock = ContinuousClock()
        let start = clock.now
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for w in 0..<writers {
                group.addTask {
                    var count = 0
                    while clock.now - start < .seconds(duration) {
                        try await log.append(
                            AuditEntry(
                                type: "exec",
                                actor: AuditActor(uid: 0, pid: 1, role: "hypervisor"),
                                subject: [
                                    "vm": "office", "path": .string("/usr/bin/tool-\(w)-\(count)"), "decision": "deny",
                                    "reason": "not-whitelisted",
                                ]
                            )
                        )
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = seconds(clock.now - start)
        await log.close()
        return Double(total) / elapsed
    }

    /// The peer: one write and one fdatasync per record of the same size.
    static func naiveDurableAppends(directory: String, seconds duration: Double) -> Double {
        let fd = open(directory + "/naive.log", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        defer { close(fd) }
        let record = Array(String(repeating: "x", count: 330).utf8) + [0x0A]
        let clock = ContinuousClock()
        let start = clock.now
        var count = 0
        while clock.now - start < .seconds(duration) {
            _ = record.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            fdatasync(fd)
            count += 1
        }
        return Double(count) / seconds(clock.now - start)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
