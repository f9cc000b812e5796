import Crypto
import UkeyAudit
import UkeyToken
import UkeyVarlink

/// `io.ukey.Audit`: reading and verifying the audit log.
/// Records from `since` on, a page at a time; with `more: true`, then every new record as it
/// becomes durable, until the client goes or the daemon stops.
extension Audit.Query: StreamingMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        var cursor = AuditLog.Cursor.start
        return try page(
            call.services.audit.log,
            from: &cursor,
            since: UInt64(request.since ?? 1),
            limit: request.limit ?? 100,
            type: request.type
        )
    }

    static func stream(
        _ request: Request,
        in call: CallContext,
        stopping: @escaping @Sendable () -> Bool,
        connected: @escaping @Sendable () -> Bool,
        send: (Result<Reply, APIError>, Bool) async throws -> Void
    ) async throws {
        guard let log = call.services.audit.log else {
            return try await send(.failure(.notInitialized), false)
        }
        var next = max(1, request.since ?? 1)
        // Each look reads from where the last one stopped; between looks the follower sleeps
        // until the writer makes a record durable (or the daemon stops).
        var cursor = AuditLog.Cursor.start
        while !stopping() && connected() {
            let reply: Reply
            do throws(APIError) {
                reply = try page(log, from: &cursor, since: UInt64(next), limit: maxLimit, type: request.type)
            } catch {
                return try await send(.failure(error), false)
            }
            next = reply.next
            if !reply.records.isEmpty {
                try await send(.success(reply), true)
                continue
            }
            let seen = UInt64(max(0, next - 1))
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await log.waitForRecords(after: seen) }
                group.addTask {
                    while !stopping() && connected() && !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
        try await send(.success(Reply(records: [], next: next)), false)
    }

    /// Records from `since` on (optionally of one type), at most `limit`, reading from
    /// `cursor` on and moving it past what was read: a follower's next look reads only what
    /// was added since.
    static func page(
        _ log: AuditLog?,
        from cursor: inout AuditLog.Cursor,
        since: UInt64,
        limit: Int,
        type: String?
    ) throws(APIError) -> Reply {
        guard let log else { throw .notInitialized }
        var out: [[String: JSONValue]] = []
        var next = max(1, since)
        while out.count < limit {
            let page: [(seq: UInt64, line: [UInt8])]
            do {
                (page, cursor) = try log.records(
                    from: cursor.seq <= next ? cursor : .start,
                    since: next,
                    limit: maxLimit
                )
            } catch {
                throw .auditUnavailable(reason: error.description)
            }
            guard let last = page.last else { break }
            for (seq, line) in page where out.count < limit {
                next = seq + 1
                guard let object = try? VarlinkCodec.parseObject(line) else { continue }
                if let type, object["type"]?.stringValue != type { continue }
                out.append(object)
            }
            if page.count < maxLimit || last.seq < next - 1 { break }
        }
        return Reply(records: out, next: Int(next))
    }
}

/// Verifies the whole log with the audit key and the sealed checkpoint (the file is read off
/// the daemon's actor: a long log must not hold up other calls).
extension Audit.Verify: ServedMethod {

    static func answer(_ request: Empty, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        let key: VerificationKey
        let sealed: SealedCheckpoint?
        do {
            let certificate = try await token.certificate(named: TokenKey.audit.rawValue)
            guard let k = certificate.verificationKey(sm2ID: token.keyAlgorithm.sm2ID ?? []) else {
                throw APIError.internalError
            }
            key = k
            sealed = try await TokenCheckpointing.sealed(in: token)
        } catch {
            throw .internalError
        }
        let checkpointKey = CheckpointKey(algorithm: key.algorithm) { key.isValidSignature($0, for: $1) }
        do {
            // The whole chain: the current file and every archive beside it that it continues.
            let path = call.services.auditPath
            return Reply(
                try AuditChainVerifier.verify(
                    current: path,
                    archives: AuditChainVerifier.archives(besideLog: path),
                    checkpointKey: checkpointKey,
                    sealed: sealed
                )
            )
        } catch {
            throw .auditUnavailable(reason: error.description)
        }
    }
}
