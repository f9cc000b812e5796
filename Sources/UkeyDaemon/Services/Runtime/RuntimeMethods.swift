import UkeyCore
import UkeyPolicy

/// The policy's whitelist with this boot's trusted VMs and the mode: one immutable value,
/// replaced whole whenever any of them changes.
struct RuntimeView: Sendable {
    let whitelist: Whitelist
    /// VMs with run-time rules that are trusted in the current boot chain.
    let trusted: Set<String>
    let mode: EnforcementMode
    /// Moves whenever the policy, the trusted VMs or the mode changes (`Basis`).
    let generation: UInt64

    /// What a decision depends on besides the file.
    struct Basis: Equatable {
        let policySignature: [UInt8]
        let trusted: Set<String>
        let mode: EnforcementMode
    }

    /// What a guard of `vm` answers when it cannot ask in time (the policy's on-timeout).
    func onTimeout(vm: String?) -> String { whitelist.onTimeout(vm: vm, mode: mode).rawValue }

    func check(_ request: Runtime.CheckExec.Request, digest: Digest) -> Runtime.CheckExec.Reply {
        let verdict = whitelist.check(
            vm: request.vm ?? "",
            path: request.path,
            digest: digest,
            vmTrusted: trusted.contains(request.vm ?? ""),
            mode: mode
        )
        return Runtime.CheckExec.Reply(decision: verdict.decision.rawValue, rule: verdict.rule, reason: verdict.reason)
    }
}

/// `io.ukey.Runtime` as ukeyd answers it: the application whitelist, on top of boot-time trust.
/// Answered on the caller's connection from the published `RuntimeView`, never on the daemon's
/// actor.
extension Runtime.CheckExec: ImmediateMethod {
    /// The file's digest, as the whitelist compares it.
    static func digest(of request: Request) throws(APIError) -> Digest {
        do {
            return try Digest(parsing: request.digest)
        } catch {
            throw .invalidParameter("digest")
        }
    }

    static func answerNow(_ request: Request, in call: CallContext) throws(APIError) -> Reply {
        guard let view = call.services.boot.runtime.withLock({ $0 }) else { throw .noPolicy }
        return view.check(request, digest: try digest(of: request))
    }
}

extension Runtime.CheckExecBatch: ImmediateMethod {
    static func answerNow(_ request: Request, in call: CallContext) throws(APIError) -> Reply {
        guard let view = call.services.boot.runtime.withLock({ $0 }) else { throw .noPolicy }
        let vm = request.vm ?? request.items.first?.vm ?? nil
        return Reply(
            results: try request.items.map { (item) throws(APIError) in
                do throws(APIError) {
                    return view.check(item, digest: try Runtime.CheckExec.digest(of: item))
                } catch {
                    throw .invalidParameter("items")
                }
            },
            generation: view.generation,
            onTimeout: view.onTimeout(vm: vm),
            interpreters: view.whitelist.interpreters(vm: vm).rawValue,
            tag: request.tag
        )
    }
}

/// Available only while the set is all there is to an allow: the VM is trusted, the mode
/// enforces, and allowed execs are not recorded; otherwise the guard asks about every file.
extension Runtime.AllowedFingerprints: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        guard let view = call.services.boot.runtime.withLock({ $0 }) else { throw .noPolicy }
        guard view.trusted.contains(request.vm), view.mode == .enforce, !call.services.audit.mayRecordAllowedExec,
            let all = view.whitelist.fingerprints(vm: request.vm)
        else {
            return Reply(available: false, total: 0, fingerprints: [], generation: view.generation)
        }
        let start = min(request.offset ?? 0, all.count)
        let page = all[start..<min(all.count, start + (request.limit ?? maxPage))]
        var bytes: [UInt8] = []
        bytes.reserveCapacity(page.count * ExecFingerprint.size)
        for fingerprint in page { fingerprint.append(to: &bytes) }
        return Reply(available: true, total: all.count, fingerprints: bytes, generation: view.generation)
    }
}

/// A host guard makes its start a `more` call and keeps it open for its whole life: when that
/// connection closes with no stop said first, the guard is lost (`GuardRegistry`).
extension Runtime.GuardEvent: StreamingMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let key = registryKey(request, call)
        if request.event == "start" {
            call.services.guards.started(key)
        } else {
            call.services.guards.stopped(key)
        }
        return Reply(generation: call.services.boot.runtime.withLock { $0?.generation } ?? 0)
    }

    static func stream(
        _ request: Request,
        in call: CallContext,
        stopping: @escaping @Sendable () -> Bool,
        connected: @escaping @Sendable () -> Bool,
        send: (Result<Reply, APIError>, Bool) async throws -> Void
    ) async throws {
        let reply: Reply
        do throws(APIError) {
            reply = try await answer(request, in: call)
        } catch {
            return try await send(.failure(error), false)
        }
        guard request.event == "start" else { return try await send(.success(reply), false) }
        try await send(.success(reply), true)
        while !stopping() && connected() { try? await Task.sleep(for: .milliseconds(100)) }
        let key = registryKey(request, call)
        guard !stopping(), call.services.guards.lost(key, reason: "its connection to ukeyd closed without a stop")
        else { return }
        call.services.logger.warning(
            "exec guard of \(request.vm ?? "?") (pid \(call.caller.pid)) is gone without a stop: execs there are no longer held"
        )
        await call.services.audit.record(
            "guard",
            [
                "vm": .string(request.vm ?? ""), "event": "lost", "via": "socket", "pid": .int(Int(call.caller.pid)),
                "reason": "its connection to ukeyd closed without a stop",
            ],
            logger: call.services.logger
        )
    }

    static func registryKey(_ request: Request, _ call: CallContext) -> GuardRegistry.Key {
        call.caller.guest.map { GuardRegistry.Key(vm: $0, via: .channel, pid: 0) }
            ?? GuardRegistry.Key(vm: request.vm ?? "", via: .socket, pid: call.caller.pid)
    }
}
