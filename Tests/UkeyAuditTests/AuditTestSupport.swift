import Crypto
import Foundation
import UkeyAudit
import UkeyCore
import UkeyTesting

/// Signs checkpoints with a key of the test's own and remembers what was sealed, as the token
/// does for the daemon (the token's own signing is tested in UkeyTokenTests).
final class TestCheckpointing: AuditCheckpointing, @unchecked Sendable {
    let key = P256.Signing.PrivateKey()
    private let lock = NSLock()
    private var _sealed: SealedCheckpoint?
    var sealed: SealedCheckpoint? { lock.withLock { _sealed } }

    func signCheckpoint(_ message: [UInt8]) async throws -> [UInt8] {
        Array(try key.signature(for: AuditCheckpoint.signingDomain + message).derRepresentation)
    }

    func sealCheckpoint(_ checkpoint: SealedCheckpoint) async throws {
        lock.withLock { _sealed = checkpoint }
    }
}

extension AuditLog {
    static func make(
        in dir: TemporaryDirectory,
        every: Int = 1000,
        sealed: SealedCheckpoint? = nil,
        _ checkpointing: TestCheckpointing
    ) throws -> AuditLog {
        var configuration = Configuration(path: dir.path + "/audit.log")
        configuration.checkpointEvery = every
        configuration.checkpointInterval = 1e9  // count-based only: a slow machine must not add checkpoints
        return try AuditLog(
            configuration: configuration,
            sealed: sealed,
            checkpointing: checkpointing,
            problems: { _ in }
        )
    }
}

func entry(_ n: Int) -> AuditEntry {
    AuditEntry(
        type: "exec",
        actor: AuditActor(uid: 0, pid: 42, role: "hypervisor"),
        subject: ["path": .string("/usr/bin/tool-\(n)"), "decision": "deny"]
    )
}

/// The log's lines (without newlines).
func lines(_ path: String) throws -> [[UInt8]] {
    let data = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    return data.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map(Array.init)
}

func write(_ lines: [[UInt8]], to path: String, trailingNewline: Bool = true) throws {
    var bytes = Array(lines.joined(separator: [0x0A]))
    if trailingNewline { bytes.append(0x0A) }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}
