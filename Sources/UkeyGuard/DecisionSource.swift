import Foundation
import UkeyAPI
import UkeyClient
import UkeyVarlink

/// What a guard asks: may these files run in this VM? One answer per file, plus the decision
/// state's generation and what to answer when the source cannot be asked in time.
public struct Decisions: Sendable {
    public let allowed: [Bool]
    public let generation: UInt64
    public let onTimeout: Bool
    /// The rule set lets interpreters read any script (`interpreters: allow`).
    public let interpretersAllowed: Bool

    public init(allowed: [Bool], generation: UInt64, onTimeout: Bool, interpretersAllowed: Bool = false) {
        self.allowed = allowed
        self.generation = generation
        self.onTimeout = onTimeout
        self.interpretersAllowed = interpretersAllowed
    }
}

/// What a guard tells ukeyd of itself (`io.ukey.Runtime.GuardEvent`), for its audit log.
public enum GuardReport: String, Sendable {
    case start, stop
}

/// Where decisions come from: ukeyd (over its Unix socket on the host, or a guest's port).
public protocol DecisionSource: AnyObject {
    /// Asks about `files` (path and SHA-256) within `deadline` seconds, or throws.
    func decide(vm: String, files: [(path: String, sha256: [UInt8])], deadline: TimeInterval) throws -> Decisions
    /// Tells ukeyd the guard started or is stopping, with the file systems it guards and the
    /// gaps it was told to accept.
    func report(_ event: GuardReport, vm: String, mounts: [String], gaps: [String], deadline: TimeInterval) throws
}

/// A source that can hand over the VM's allowed set (`LocalAllowSet`), so a listed file runs
/// without a call.
public protocol AllowSetSource: DecisionSource {
    /// Fetches the whole set, or nil when the daemon says it is not available now; run on a
    /// thread of its own, over a connection of its own, so the guard never waits for it.
    var allowSetFetcher: @Sendable (_ vm: String, _ deadline: TimeInterval) throws -> LocalAllowSet? { get }
}

/// ukeyd's `io.ukey.Runtime` methods, on one connection kept open and made again after a
/// failure. Every read is bounded by the deadline it is given, so a ukeyd that is gone or stuck
/// costs at most that long.
public final class DaemonDecisions: AllowSetSource {
    let socket: String
    private var connection: VarlinkConnection?
    /// The start call, held open for the guard's life: ukeyd records the guard lost when this
    /// connection closes before a stop was said (a guard killed says nothing).
    private var presence: VarlinkConnection?

    public init(socket: String) {
        self.socket = socket
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public func report(
        _ event: GuardReport,
        vm: String,
        mounts: [String],
        gaps: [String],
        deadline: TimeInterval
    ) throws {
        let request = Runtime.GuardEvent.Request(vm: vm, event: event.rawValue, mounts: mounts, gaps: gaps)
        let connection = try VarlinkConnection(path: socket, timeout: deadline)
        switch event {
        case .start:
            // `more`: one reply comes now, and the call stays open until this process ends.
            try connection.send(VarlinkCall(Runtime.GuardEvent.self, request, more: true))
            _ = try connection.receive().decoded(as: Runtime.GuardEvent.self)
            presence = connection
        case .stop:
            _ = try connection.call(Runtime.GuardEvent.self, request)
            presence = nil
        }
    }

    public func decide(vm: String, files: [(path: String, sha256: [UInt8])], deadline: TimeInterval) throws -> Decisions
    {
        let request = Runtime.CheckExecBatch.Request(
            items: files.map { .init(vm: vm, path: $0.path, digest: "sha256:" + Hex.encode($0.sha256)) },
            vm: vm
        )
        let reply = try exchange(deadline: deadline) { connection in
            try connection.call(Runtime.CheckExecBatch.self, request)
        }
        return try Decisions(reply, files: files.count)
    }

    public var allowSetFetcher: @Sendable (String, TimeInterval) throws -> LocalAllowSet? {
        { [socket] vm, deadline in try DaemonDecisions(socket: socket).fetchAllowSet(vm: vm, deadline: deadline) }
    }

    public func fetchAllowSet(vm: String, deadline: TimeInterval) throws -> LocalAllowSet? {
        var fingerprints: [ExecFingerprint] = []
        var generation: UInt64?
        while true {
            let reply = try exchange(deadline: deadline) { connection in
                try connection.call(
                    Runtime.AllowedFingerprints.self,
                    .init(vm: vm, offset: fingerprints.count)
                )
            }
            let bytes = reply.fingerprints.bytes
            guard bytes.count % ExecFingerprint.size == 0 else {
                throw Failure(description: "ukeyd's AllowedFingerprints reply is not what ukey-guard expects")
            }
            guard reply.available else { return nil }
            // The set moved under us (a reload between pages): start again.
            if let generation, generation != reply.generation {
                return try fetchAllowSet(vm: vm, deadline: deadline)
            }
            generation = reply.generation
            let total = reply.total
            if fingerprints.isEmpty { fingerprints.reserveCapacity(total) }
            bytes.withUnsafeBytes { raw in
                for offset in stride(from: 0, to: raw.count, by: ExecFingerprint.size) {
                    fingerprints.append(
                        ExecFingerprint(
                            bytes: UnsafeRawBufferPointer(rebasing: raw[offset..<offset + ExecFingerprint.size])
                        )
                    )
                }
            }
            if fingerprints.count >= total || bytes.isEmpty { break }
        }
        return LocalAllowSet(vm: vm, generation: generation ?? 0, fingerprints: fingerprints)
    }

    /// Runs `body` on the connection (made first if there is none), each read bounded by
    /// `deadline` when one is given; any failure drops the connection, so a reply left unread
    /// can never be taken for the next call's.
    private func exchange<T>(deadline: TimeInterval?, _ body: (VarlinkConnection) throws -> T) throws -> T {
        do {
            let connection = try connection ?? VarlinkConnection(path: socket, timeout: deadline ?? 2)
            self.connection = connection
            if let deadline { connection.setReceiveTimeout(deadline) }
            return try body(connection)
        } catch {
            connection = nil
            throw error
        }
    }
}

extension Decisions {
    /// A CheckExecBatch reply about `files` files, as a guard acts on it.
    init(_ reply: Runtime.CheckExecBatch.Reply, files: Int) throws {
        guard reply.results.count == files else {
            throw DaemonDecisions.Failure(
                description: "ukeyd answered about \(reply.results.count) files, not \(files)"
            )
        }
        self.init(
            allowed: reply.results.map { $0.decision == "allow" },
            generation: reply.generation,
            onTimeout: reply.onTimeout == "allow",
            interpretersAllowed: reply.interpreters == "allow"
        )
    }
}
