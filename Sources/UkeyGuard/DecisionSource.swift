import Foundation
import UkeyClient
import UkeyVarlink

/// What a guard asks: may these files run in this VM? One answer per file, plus the decision
/// state's generation and what to answer when the source cannot be asked in time.
public struct Decisions: Sendable {
    public let allowed: [Bool]
    public let generation: UInt64
    public let onTimeout: Bool
}

/// Where decisions come from: ukeyd (over its Unix socket on the host).
public protocol DecisionSource: AnyObject {
    /// Asks about `files` (path and SHA-256) within `deadline` seconds, or throws.
    func decide(vm: String, files: [(path: String, sha256: [UInt8])], deadline: TimeInterval) throws -> Decisions
}

/// ukeyd's `io.ukey.Runtime.CheckExecBatch`, on one connection kept open and made again after
/// a failure. Every read is bounded by the deadline, so a ukeyd that is gone or stuck costs at
/// most that long.
public final class DaemonDecisions: DecisionSource {
    let socket: String
    private var connection: VarlinkConnection?
    private var connectionDeadline: TimeInterval = 0

    public init(socket: String) {
        self.socket = socket
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Tells ukeyd the guard started or is stopping (`io.ukey.Runtime.GuardEvent`), for its audit log.
    public func report(_ event: String, vm: String, mounts: [String], deadline: TimeInterval) throws {
        let connection = try VarlinkConnection(path: socket, timeout: deadline)
        _ = try connection.call("io.ukey.Runtime.GuardEvent", ["vm": .string(vm), "event": .string(event), "mounts": .array(mounts.map { .string($0) })])
    }

    public func decide(vm: String, files: [(path: String, sha256: [UInt8])], deadline: TimeInterval) throws -> Decisions {
        let items: [JSONValue] = files.map { file in
            .object(["vm": .string(vm), "path": .string(file.path), "digest": .string("sha256:" + file.sha256.map { String(format: "%02x", $0) }.joined())])
        }
        do {
            if connection == nil || connectionDeadline != deadline {
                connection = try VarlinkConnection(path: socket, timeout: deadline)
                connectionDeadline = deadline
            }
            guard let connection else { throw Failure(description: "no connection") }
            let reply = try connection.call("io.ukey.Runtime.CheckExecBatch", ["items": .array(items), "vm": .string(vm)])
            guard case .array(let results)? = reply["results"], results.count == files.count,
                let generation = reply["generation"]?.intValue, let onTimeout = reply["onTimeout"]?.stringValue
            else { throw Failure(description: "ukeyd's CheckExecBatch reply is not what ukey-guard expects") }
            return Decisions(
                allowed: results.map { $0.objectValue?["decision"]?.stringValue == "allow" },
                generation: UInt64(max(0, generation)),
                onTimeout: onTimeout == "allow")
        } catch {
            connection = nil
            throw error
        }
    }
}
