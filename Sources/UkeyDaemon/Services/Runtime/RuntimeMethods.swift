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

    func check(_ request: Runtime.CheckExec.Request) -> Runtime.CheckExec.Reply {
        let verdict = whitelist.check(
            vm: request.vm,
            path: request.path,
            digest: request.digest,
            vmTrusted: trusted.contains(request.vm),
            mode: mode
        )
        return Runtime.CheckExec.Reply(decision: verdict.decision.rawValue, rule: verdict.rule, reason: verdict.reason)
    }
}

/// `io.ukey.Runtime`: the application whitelist, on top of boot-time trust. Answered on the
/// caller's connection from the published `RuntimeView`, never on the daemon's actor.
enum Runtime {
    enum CheckExec: ImmediateMethod {
        static let name = "io.ukey.Runtime.CheckExec"
        static let role: Role? = .hypervisor

        struct Request: Sendable {
            let vm: String
            let path: String
            let digest: Digest
        }

        struct Reply: Sendable {
            let decision: String
            let rule: String?
            let reason: String?
        }

        static func answerNow(_ request: Request, in call: CallContext) throws(ServiceError) -> Reply {
            guard let view = call.services.boot.runtime.withLockedValue({ $0 }) else { throw .noPolicy }
            return view.check(request)
        }
    }

    enum CheckExecBatch: ImmediateMethod {
        static let name = "io.ukey.Runtime.CheckExecBatch"
        static let role: Role? = .hypervisor
        static let maxItems = 10_000

        struct Request: Sendable {
            let items: [CheckExec.Request]
            /// The guard's VM, for its on-timeout (an empty batch names no item).
            let vm: String?
            /// Echoed in the reply, so a guard on a port can tell its reply from a late one.
            let tag: String?
        }

        struct Reply: Sendable {
            let results: [CheckExec.Reply]
            /// The decision state's generation: a guard drops its cache when it moves.
            let generation: UInt64
            let onTimeout: String
            /// Whether the guard judges what interpreters read ("check") or not ("allow").
            let interpreters: String
            let tag: String?
        }

        static func answerNow(_ request: Request, in call: CallContext) throws(ServiceError) -> Reply {
            guard let view = call.services.boot.runtime.withLockedValue({ $0 }) else { throw .noPolicy }
            let vm = request.vm ?? request.items.first?.vm
            return Reply(
                results: request.items.map(view.check),
                generation: view.generation,
                onTimeout: view.onTimeout(vm: vm),
                interpreters: view.whitelist.interpreters(vm: vm).rawValue,
                tag: request.tag
            )
        }
    }

    /// The fingerprints of a VM's allowed SHA-256 entries (`ExecFingerprint`), a page at a
    /// time, for its exec guard: a file whose fingerprint is in the set may run without a call,
    /// so a cold exec costs a hash and no round trip. Anything else the guard asks about with
    /// CheckExecBatch, which decides and records. Available only while the set is all there is
    /// to an allow: the VM is trusted, the mode enforces, and allowed execs are not recorded;
    /// otherwise `available` is false and the guard asks about every file. Records nothing.
    enum AllowedFingerprints: ServiceMethod {
        static let name = "io.ukey.Runtime.AllowedFingerprints"
        static let role: Role? = .hypervisor
        /// 512 KiB of fingerprints a reply (about 700 KB of base64).
        static let maxPage = 32_768

        struct Request: Sendable {
            let vm: String
            let offset: Int
            let limit: Int
        }

        struct Reply: Sendable {
            let available: Bool
            let total: Int
            let fingerprints: [ExecFingerprint]
            let generation: UInt64
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            guard let view = call.services.boot.runtime.withLockedValue({ $0 }) else { throw .noPolicy }
            guard view.trusted.contains(request.vm), view.mode == .enforce, !call.services.audit.mayRecordAllowedExec,
                let all = view.whitelist.fingerprints(vm: request.vm)
            else {
                return Reply(available: false, total: 0, fingerprints: [], generation: view.generation)
            }
            let start = min(request.offset, all.count)
            let page = Array(all[start..<min(all.count, start + request.limit)])
            return Reply(available: true, total: all.count, fingerprints: page, generation: view.generation)
        }
    }

    /// An exec guard says it started or is stopping, so the audit log shows when enforcement was
    /// on: while no guard runs, the kernel lets every exec through. A host guard makes its start
    /// a `more` call and keeps it open for its whole life: when that connection closes with no
    /// stop said first, the guard is lost (`GuardRegistry`).
    enum GuardEvent: StreamingMethod {
        static let name = "io.ukey.Runtime.GuardEvent"
        static let role: Role? = .hypervisor

        enum Event: String, Sendable {
            case start, stop
        }

        struct Request: Sendable {
            let vm: String
            let event: Event
            let mounts: [String]
            /// What the guard could not close and was told to accept (`memfd-exec`, `user-namespaces`).
            let gaps: [String]
        }

        struct Reply: Sendable {
            let generation: UInt64
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let key = registryKey(request, call)
            switch request.event {
            case .start: call.services.guards.started(key)
            case .stop: call.services.guards.stopped(key)
            }
            return Reply(generation: call.services.boot.runtime.withLockedValue { $0?.generation } ?? 0)
        }

        static func stream(
            _ request: Request,
            in call: CallContext,
            stopping: @escaping @Sendable () -> Bool,
            connected: @escaping @Sendable () -> Bool,
            send: (Result<Reply, ServiceError>, Bool) async throws -> Void
        ) async throws {
            let reply: Reply
            do throws(ServiceError) {
                reply = try await answer(request, in: call)
            } catch {
                return try await send(.failure(error), false)
            }
            guard request.event == .start else { return try await send(.success(reply), false) }
            try await send(.success(reply), true)
            while !stopping() && connected() { try? await Task.sleep(for: .milliseconds(100)) }
            let key = registryKey(request, call)
            guard !stopping(), call.services.guards.lost(key, reason: "its connection to ukeyd closed without a stop")
            else { return }
            call.services.logger.warning(
                "exec guard of \(request.vm) (pid \(call.caller.pid)) is gone without a stop: execs there are no longer held"
            )
            await call.services.audit.record(
                "guard",
                [
                    "vm": .string(request.vm), "event": "lost", "via": "socket", "pid": .int(Int(call.caller.pid)),
                    "reason": "its connection to ukeyd closed without a stop",
                ],
                logger: call.services.logger
            )
        }

        static func registryKey(_ request: Request, _ call: CallContext) -> GuardRegistry.Key {
            call.caller.guest.map { GuardRegistry.Key(vm: $0, via: .channel, pid: 0) }
                ?? GuardRegistry.Key(vm: request.vm, via: .socket, pid: call.caller.pid)
        }
    }
}
