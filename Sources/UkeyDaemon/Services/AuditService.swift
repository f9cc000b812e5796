import Crypto
import UkeyAudit
import UkeyToken
import UkeyVarlink
import X509

/// `io.ukey.Audit`: reading and verifying the audit log.
enum AuditQuery {
    static let maxLimit = 1000

    /// Records from `since` on (optionally of one type), at most `limit`, as JSON objects, and
    /// the `seq` to ask for next.
    static func records(_ log: AuditLog?, since: UInt64, limit: Int, type: String?) throws(VarlinkError) -> [String: JSONValue] {
        var cursor = AuditLog.Cursor.start
        return try records(log, from: &cursor, since: since, limit: limit, type: type)
    }

    /// As above, reading from `cursor` on and moving it past what was read: a follower's next
    /// look reads only what was added since.
    static func records(_ log: AuditLog?, from cursor: inout AuditLog.Cursor, since: UInt64, limit: Int, type: String?) throws(VarlinkError) -> [String: JSONValue] {
        guard let log else { throw DaemonErrors.notInitialized() }
        var out: [JSONValue] = []
        var next = max(1, since)
        while out.count < limit {
            let page: [(seq: UInt64, line: [UInt8])]
            do {
                (page, cursor) = try log.records(from: cursor.seq <= next ? cursor : .start, since: next, limit: maxLimit)
            } catch {
                throw VarlinkError("io.ukey.AuditUnavailable", ["reason": .string(error.description)])
            }
            guard let last = page.last else { break }
            for (seq, line) in page where out.count < limit {
                next = seq + 1
                guard let object = try? VarlinkCodec.parseObject(line) else { continue }
                if let type, object["type"]?.stringValue != type { continue }
                out.append(.object(object))
            }
            if page.count < maxLimit || last.seq < next - 1 { break }
        }
        return ["records": .array(out), "next": .int(Int(next))]
    }
}

extension DaemonCore {
    /// Verifies the whole log with the audit key and the sealed checkpoint (the file is read off
    /// the actor: a long log must not hold up other calls).
    nonisolated func verifyAudit() async throws(VarlinkError) -> [String: JSONValue] {
        let (token, path) = try await auditVerificationInputs()
        let key: P256.Signing.PublicKey
        let sealed: SealedCheckpoint?
        do {
            guard let k = P256.Signing.PublicKey(try await token.certificate(named: "audit").publicKey) else {
                throw DaemonErrors.internalError()
            }
            key = k
            sealed = try await TokenCheckpointing.sealed(in: token)
        } catch {
            throw DaemonErrors.internalError()
        }
        do {
            let result = try AuditVerifier.verify(path: path, auditKey: key, sealed: sealed)
            return [
                "ok": .bool(result.ok), "count": .int(result.count), "checkpoints": .int(result.checkpoints),
                "unsignedTail": .int(result.unsignedTail),
                "firstBad": result.firstBad.map { .int(Int($0)) } ?? .null,
                "reason": result.reason.map(JSONValue.string) ?? .null,
            ]
        } catch {
            throw VarlinkError("io.ukey.AuditUnavailable", ["reason": .string(error.description)])
        }
    }

    private func auditVerificationInputs() throws(VarlinkError) -> (any TrustedRoot, String) {
        (try requireToken(), auditPath)
    }
}
