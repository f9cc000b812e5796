import Foundation
import Synchronization
import UkeyAudit
import UkeyToken

/// The daemon's audit log, reachable without a hop through the daemon's actor: the dispatcher
/// enqueues a record for every call it answers, on the connection's own task.
final class AuditHolder: Sendable {
    private let box = Mutex<AuditLog?>(nil)
    private let forwarderBox = Mutex<AuditForwarder?>(nil)
    private let allowCounter = Mutex(0)
    /// Writes the counts of permission-denial intervals that are over (`startDenialFlusher`).
    let denialFlusher = Mutex<Task<Void, Never>?>(nil)
    let settings: AuditSettings
    /// Repeated permission denials, counted per peer and method (see `DenialAggregator`).
    let denials = DenialAggregator()
    /// Exec denials, counted per denial and bounded per guard channel (see `ExecDenialAggregator`).
    let execDenials = ExecDenialAggregator()

    /// The counts of every aggregation interval that is over (all of them with `all`).
    func flushCounts(all: Bool = false) -> [AuditEntry] {
        denials.flush(all: all) + execDenials.flush(all: all)
    }

    init(settings: AuditSettings) {
        self.settings = settings
    }

    var log: AuditLog? {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }

    /// The off-host copy, when `[audit] forward` asks for one (one per daemon, kept across a
    /// re-opened log).
    var forwarder: AuditForwarder? {
        get { forwarderBox.withLock { $0 } }
        set { forwarderBox.withLock { $0 = newValue } }
    }

    /// Whether any allowed execution may be recorded (then a check must take the path that
    /// records, and may not be answered early without consulting the sampler).
    var mayRecordAllowedExec: Bool { settings.execAllows != .none }

    /// Whether an allowed execution is recorded under the sampling setting.
    func recordsAllowedExec() -> Bool {
        switch settings.execAllows {
        case .all: return true
        case .none: return false
        case .sampled:
            return allowCounter.withLock { count in
                count += 1
                return count % max(1, settings.execAllowSample) == 0
            }
        }
    }
}

/// Checkpoints signed by the token's audit key; their position sealed in the token's store.
struct TokenCheckpointing: AuditCheckpointing {
    static let record = "audit"
    let token: any TrustedRoot

    var signatureAlgorithm: String { token.keyAlgorithm.signatureAlgorithm }

    func signCheckpoint(_ message: [UInt8]) async throws -> [UInt8] {
        try await token.keys.signAuditCheckpoint(message)
    }

    func sealCheckpoint(_ checkpoint: SealedCheckpoint) async throws {
        try await token.setDaemonRecords([Self.record: Array(try JSONEncoder().encode(checkpoint))])
    }

    static let tailKeyRecord = "audit-tail-key"

    /// The key of the log's tail seal (`AuditTailSeal`) and whether the store has it. A new key
    /// is stored (`storeTailSealKey`) only after the first seal made with it is on disk, so a crash
    /// in between leaves no stored key without a seal.
    static func tailSealKey(in token: any TrustedRoot) async -> (key: [UInt8], existed: Bool) {
        if let key = await token.daemonRecord(tailKeyRecord), key.count == 32 { return (key, true) }
        var generator = SystemRandomNumberGenerator()
        return ((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }, false)
    }

    static func storeTailSealKey(_ key: [UInt8], in token: any TrustedRoot) async throws {
        try await token.setDaemonRecords([tailKeyRecord: key])
    }

    static func sealed(in token: any TrustedRoot) async throws -> SealedCheckpoint? {
        guard let raw = await token.daemonRecord(record) else { return nil }
        return try JSONDecoder().decode(SealedCheckpoint.self, from: Data(raw))
    }
}
