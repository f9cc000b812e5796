import UkeyAudit
import UkeyCore
import UkeyPolicy
import UkeyVarlink

/// Routes a call to its service after the checks every call gets, in this order: the interface
/// and method exist; the caller holds the method's role (else PermissionDenied, and nothing runs);
/// the token is initialised where the method needs it.
public struct Dispatcher: Sendable {
    typealias Handler = @Sendable (DaemonCore, Parameters) async throws(VarlinkError) -> [String: JSONValue]
    /// Queues the call's work and returns its ticket without waiting for the answer; nil when
    /// this call cannot be queued so (the handler then answers it).
    typealias Submitter = @Sendable (DaemonCore, Parameters, MeasurementTicket.Origin) async throws(VarlinkError) -> MeasurementTicket?

    struct Method: Sendable {
        /// nil: anyone who can connect.
        let role: Role?
        let handler: Handler
        let submit: Submitter?
    }

    let core: DaemonCore
    let methods: [String: Method]
    let logins = LoginLimiter()
    static let vendor = "ukey"
    static let product = "ukeyd"
    public static let version = "0.1.0"

    public init(core: DaemonCore) {
        self.core = core
        self.methods = Self.table()
    }

    /// A call answered but not yet acknowledged: its audit records may still be on their way
    /// to the disk.
    public struct Handled: Sendable {
        public let reply: VarlinkReply
        let ticket: AuditLog.Ticket?
        let log: AuditLog?
    }

    /// Answers one call and queues its audit records. Never throws: every failure is an error
    /// reply. Send the reply only after `acknowledge`.
    public func handle(_ call: VarlinkCall, from caller: Caller) async -> Handled {
        recorded(call, from: caller, reply: await answer(call, from: caller))
    }

    /// A call begun: answered already, or a measurement queued for a batch, to be finished
    /// (in call order) with `finish`.
    enum Started: Sendable {
        case handled(Handled)
        case queued(MeasurementTicket)
    }

    /// Whether `start` may queue this call rather than answer it: the connection must then let
    /// its queued calls settle before it starts any call that may not be queued.
    func queues(_ call: VarlinkCall) -> Bool {
        methods[call.method]?.submit != nil
    }

    /// Begins a call: a measurement by digest, from a caller allowed to measure, is queued for
    /// the next batch; anything else is handled as `handle` does.
    func start(_ call: VarlinkCall, from caller: Caller) async -> Started {
        if let method = methods[call.method], let submit = method.submit, method.role.map(caller.roles.contains) ?? true {
            do throws(VarlinkError) {
                let origin = MeasurementTicket.Origin(call: call, caller: caller)
                if let ticket = try await submit(core, Parameters(values: call.parameters), origin) { return .queued(ticket) }
            } catch {
                return .handled(recorded(call, from: caller, reply: .failure(error)))
            }
        }
        return .handled(await handle(call, from: caller))
    }

    /// The queued call's reply, once its batch answered it and queued its audit records.
    func finish(_ ticket: MeasurementTicket) async -> Handled {
        let answer = await ticket.answer()
        let reply: VarlinkReply = switch answer.result {
        case .success(let parameters): VarlinkReply(parameters: parameters)
        case .failure(let error): .failure(error)
        }
        return Handled(reply: reply, ticket: answer.audit, log: answer.log)
    }

    /// The reply with its audit records queued.
    private func recorded(_ call: VarlinkCall, from caller: Caller, reply: VarlinkReply) -> Handled {
        let (ticket, log) = AuditRules.record(call, caller: caller, reply: reply, holder: core.audit)
        return Handled(reply: reply, ticket: ticket, log: log)
    }

    /// The reply to send, once the call's audit records are durable. If the log cannot take
    /// them, the client gets an error instead: nothing is acknowledged unrecorded.
    public func acknowledge(_ handled: Handled) async -> VarlinkReply {
        guard let ticket = handled.ticket, let log = handled.log else { return handled.reply }
        do {
            try await log.durable(ticket)
            return handled.reply
        } catch {
            return .failure(VarlinkError("io.ukey.AuditUnavailable", ["reason": .string(error.description)]))
        }
    }

    /// Handles and acknowledges in one step (tests, in-process callers).
    public func call(_ call: VarlinkCall, from caller: Caller) async -> VarlinkReply {
        await acknowledge(await handle(call, from: caller))
    }

    /// Calls that stream with `more: true`: `io.ukey.Audit.Query` follows new records, for a
    /// caller who holds its role. Checked before the connection gives up its idle timeout, so a
    /// peer without the role cannot hold a connection open by asking to follow.
    public func canFollow(_ call: VarlinkCall, from caller: Caller) -> Bool {
        guard call.method == "io.ukey.Audit.Query", let method = methods[call.method] else { return false }
        return method.role.map(caller.roles.contains) ?? true
    }

    /// Streams records from `since` on, then new ones as they become durable, each reply with
    /// `continues: true`, until the client goes or the daemon stops (a last reply without it).
    public func follow(
        _ call: VarlinkCall,
        from caller: Caller,
        stopping: @escaping @Sendable () -> Bool,
        send: (VarlinkReply) async throws -> Void
    ) async throws {
        guard caller.roles.contains(.admin) else {
            try await send(.failure(.permissionDenied()))
            return
        }
        let p = Parameters(values: call.parameters)
        var next: Int
        let type: String?
        do throws(VarlinkError) {
            next = try p.optionalInt("since") ?? 1
            type = try p.optionalString("type", maxLength: 64)
        } catch {
            try await send(.failure(error))
            return
        }
        guard let log = core.audit.log else {
            try await send(.failure(DaemonErrors.notInitialized()))
            return
        }
        // Each look reads from where the last one stopped; between looks the follower sleeps
        // until the writer makes a record durable (or the daemon stops).
        var cursor = AuditLog.Cursor.start
        while !stopping() {
            let page: [String: JSONValue]
            do throws(VarlinkError) {
                page = try AuditQuery.records(log, from: &cursor, since: UInt64(max(1, next)), limit: AuditQuery.maxLimit, type: type)
            } catch {
                try await send(.failure(error))
                return
            }
            next = page["next"]?.intValue ?? next
            if let records = page["records"]?.arrayValue, !records.isEmpty {
                try await send(VarlinkReply(parameters: page, continues: true))
                continue
            }
            let seen = UInt64(max(0, next - 1))
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await log.waitForRecords(after: seen) }
                group.addTask {
                    while !stopping() && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
                }
                await group.next()
                group.cancelAll()
            }
        }
        try await send(VarlinkReply(parameters: ["records": [], "next": .int(next)]))
    }

    private func answer(_ call: VarlinkCall, from caller: Caller) async -> VarlinkReply {
        guard VarlinkInterface.all.contains(where: { $0.name == call.interface }) else {
            return .failure(.interfaceNotFound(call.interface))
        }
        guard let method = methods[call.method] else { return .failure(.methodNotFound(call.methodName)) }
        if let role = method.role, !caller.roles.contains(role) {
            return .failure(.permissionDenied())
        }
        if call.method == "io.ukey.Auth.Login" {
            guard logins.enter(caller) else {
                return .failure(VarlinkError("io.ukey.Auth.Busy", [
                    "reason": .string("this process already has \(LoginLimiter.perPeer) logins waiting for their PIN checks; wait for their answers"),
                ]))
            }
        }
        defer { if call.method == "io.ukey.Auth.Login" { logins.leave(caller) } }
        do {
            return VarlinkReply(parameters: try await method.handler(core, Parameters(values: call.parameters, caller: caller)))
        } catch {
            return .failure(error)
        }
    }

    static func table() -> [String: Method] {
        var t: [String: Method] = [:]
        func add(_ name: String, _ role: Role?, submit: Submitter? = nil, _ handler: @escaping Handler) {
            t[name] = Method(role: role, handler: handler, submit: submit)
        }

        // org.varlink.service: introspection, for generic clients.
        add("org.varlink.service.GetInfo", nil) { _, _ throws(VarlinkError) in
            [
                "vendor": .string(vendor), "product": .string(product), "version": .string(version),
                "url": "https://ukey.invalid/", "interfaces": .array(VarlinkInterface.all.map { .string($0.name) }),
            ]
        }
        add("org.varlink.service.GetInterfaceDescription", nil) { _, p throws(VarlinkError) in
            let name = try p.string("interface", maxLength: 256)
            guard let interface = VarlinkInterface.all.first(where: { $0.name == name }) else { throw .interfaceNotFound(name) }
            return ["description": .string(interface.description)]
        }

        // io.ukey.Boot
        // By digest, a measurement is queued: pipelined measurements from one connection then
        // share a batch (one journal fsync, one hop to the TPM) instead of waiting for each other.
        let submitMeasurement: Submitter = { core, p, origin throws(VarlinkError) in
            let entity = try p.string("entity", maxLength: 64), component = try p.string("component", maxLength: 64)
            let session = try p.optionalString("session", maxLength: 256)
            guard let digest = try p.digest("digest") else { return nil }
            return try await core.submitMeasurement(entity: entity, component: component, digest: digest, session: session, origin: origin)
        }
        add("io.ukey.Boot.Measure", .hypervisor, submit: submitMeasurement) { core, p throws(VarlinkError) in
            let entity = try p.string("entity", maxLength: 64), component = try p.string("component", maxLength: 64)
            let session = try p.optionalString("session", maxLength: 256)
            if let digest = try p.digest("digest") {
                return try await core.measure(entity: entity, component: component, digest: digest, session: session)
            }
            // Hashed outside the core actor and off the cooperative pool, within a deadline: a
            // large image must not hold up other calls, nor a FIFO hang them. A caller's path is
            // opened with the caller's own rights; the policy's file hint with the daemon's.
            let given = try p.optionalString("path")
            let (path, algorithm): (String, HashAlgorithm)
            if let given {
                (path, algorithm) = (given, await core.expectedAlgorithm(entity: entity, component: component))
            } else {
                (path, algorithm) = try await core.fileHint(entity: entity, component: component)
            }
            guard let caller = p.caller else { throw .invalidParameter("path") }
            let digest: Digest
            do throws(FileDigester.Failure) {
                digest = given != nil
                    ? try await PeerFileHasher.digest(ofCallerPath: path, uid: caller.uid, gid: caller.gid, using: algorithm)
                    : try await PeerFileHasher.digest(ofPolicyFile: path, using: algorithm)
            } catch {
                throw VarlinkError("io.ukey.Boot.CannotHash", ["path": .string(error.path), "reason": .string(error.reason)])
            }
            return try await core.measure(entity: entity, component: component, digest: digest, session: session)
        }
        add("io.ukey.Boot.Chain", nil) { core, _ throws(VarlinkError) in try await core.chainDescription() }
        add("io.ukey.Boot.Quote", nil) { core, p throws(VarlinkError) in
            try await core.quote(nonce: try p.base64("nonce", maxLength: 64), registers: try p.optionalInts("registers"))
        }
        add("io.ukey.Boot.EventLog", nil) { core, _ throws(VarlinkError) in try await core.eventLogData() }
        add("io.ukey.Boot.Reset", .admin) { core, _ throws(VarlinkError) in try await core.resetBoot() }
        add("io.ukey.Boot.Release", .hypervisor) { core, p throws(VarlinkError) in
            try await core.release(entity: try p.string("entity", maxLength: 64))
        }

        // io.ukey.Auth
        add("io.ukey.Auth.Login", .hypervisor) { core, p throws(VarlinkError) in
            try await core.login(user: try p.string("user", maxLength: 64), pin: try p.string("pin", maxLength: 64))
        }
        add("io.ukey.Auth.Logout", .hypervisor) { core, p throws(VarlinkError) in
            await core.logout(session: try p.string("session", maxLength: 256))
        }

        // io.ukey.Runtime
        add("io.ukey.Runtime.CheckExec", .hypervisor) { core, p throws(VarlinkError) in
            guard let digest = try p.digest("digest") else { throw .invalidParameter("digest") }
            return try core.checkExec(vm: try p.string("vm", maxLength: 64), path: try p.string("path"), digest: digest)
        }
        add("io.ukey.Runtime.CheckExecBatch", .hypervisor) { core, p throws(VarlinkError) in
            let items = try p.array("items")
            guard items.count <= 10_000 else { throw .invalidParameter("items") }
            var results: [JSONValue] = []
            for item in items {
                let fields = Parameters(values: item.objectValue ?? [:])
                guard let digest = try? fields.digest("digest"), let vm = try? fields.string("vm", maxLength: 64),
                    let path = try? fields.string("path")
                else { throw .invalidParameter("items") }
                results.append(.object(try core.checkExec(vm: vm, path: path, digest: digest)))
            }
            return ["results": .array(results)]
        }

        // io.ukey.Audit
        add("io.ukey.Audit.Query", .admin) { core, p throws(VarlinkError) in
            let since = try p.optionalInt("since") ?? 1
            let limit = try p.optionalInt("limit") ?? 100
            guard since >= 0 else { throw .invalidParameter("since") }
            guard (1...AuditQuery.maxLimit).contains(limit) else { throw .invalidParameter("limit") }
            return try AuditQuery.records(core.audit.log, since: UInt64(since), limit: limit, type: try p.optionalString("type", maxLength: 64))
        }
        add("io.ukey.Audit.Verify", .admin) { core, _ throws(VarlinkError) in try await core.verifyAudit() }

        // io.ukey.Token
        add("io.ukey.Token.Info", nil) { core, _ throws(VarlinkError) in try await core.tokenInfo() }
        add("io.ukey.Token.Certificate", nil) { core, p throws(VarlinkError) in
            try await core.certificate(name: try p.string("name", maxLength: 64))
        }
        add("io.ukey.Token.Random", nil) { core, p throws(VarlinkError) in try await core.random(count: try p.int("bytes")) }
        add("io.ukey.Token.Sign", .user) { core, p throws(VarlinkError) in
            try await core.sign(
                key: try p.string("key", maxLength: 64),
                digest: try p.base64("digest", maxLength: 64),
                session: try p.optionalString("session", maxLength: 256)
            )
        }

        // io.ukey.Admin
        add("io.ukey.Admin.Initialize", .admin) { core, p throws(VarlinkError) in
            try await core.initialize(soPIN: try p.string("soPin", maxLength: 64), policySignerPEM: try p.string("policySigner", maxLength: 64 << 10))
        }
        add("io.ukey.Admin.Status", .admin) { core, _ throws(VarlinkError) in await core.status() }
        add("io.ukey.Admin.LoadPolicy", .admin) { core, p throws(VarlinkError) in
            guard let text = try p.optionalString("policy", maxLength: PolicyParser.maxPolicyBytes) else {
                return try await core.reloadPolicyDirectory(recorded: true)
            }
            return try await core.loadPolicy(text: Array(text.utf8), signature: try p.base64("signature", maxLength: 256))
        }
        add("io.ukey.Admin.AddUser", .admin) { core, p throws(VarlinkError) in
            try await core.addUser(try p.string("user", maxLength: 64), pin: try p.string("pin", maxLength: 64), roles: try p.optionalStrings("roles") ?? [])
        }
        add("io.ukey.Admin.IssueCertificate", .admin) { core, p throws(VarlinkError) in
            try await core.issueCertificate(user: try p.string("user", maxLength: 64), csr: try p.optionalString("csr", maxLength: 64 << 10))
        }
        add("io.ukey.Admin.UnblockPin", .admin) { core, p throws(VarlinkError) in
            try await core.unblockPIN(
                user: try p.string("user", maxLength: 64),
                soPIN: try p.string("soPin", maxLength: 64),
                newPIN: try p.string("newPin", maxLength: 64)
            )
        }
        add("io.ukey.Admin.SetMode", .admin) { core, p throws(VarlinkError) in
            guard let mode = EnforcementMode(rawValue: try p.string("mode", maxLength: 16)) else { throw .invalidParameter("mode") }
            return try await core.setMode(mode)
        }
        return t
    }
}
