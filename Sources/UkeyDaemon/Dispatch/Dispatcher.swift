import UkeyCore
import UkeyPolicy
import UkeyVarlink

/// Routes a call to its service after the checks every call gets, in this order: the interface
/// and method exist; the caller holds the method's role (else PermissionDenied, and nothing runs);
/// the token is initialised where the method needs it.
public struct Dispatcher: Sendable {
    typealias Handler = @Sendable (DaemonCore, Parameters) async throws(VarlinkError) -> [String: JSONValue]

    struct Method: Sendable {
        /// nil: anyone who can connect.
        let role: Role?
        let handler: Handler
    }

    let core: DaemonCore
    let methods: [String: Method]
    static let vendor = "ukey"
    static let product = "ukeyd"
    public static let version = "0.1.0"

    public init(core: DaemonCore) {
        self.core = core
        self.methods = Self.table()
    }

    /// Answers one call. Never throws: every failure is an error reply.
    public func handle(_ call: VarlinkCall, from caller: Caller) async -> VarlinkReply {
        guard VarlinkInterface.all.contains(where: { $0.name == call.interface }) else {
            return .failure(.interfaceNotFound(call.interface))
        }
        guard let method = methods[call.method] else { return .failure(.methodNotFound(call.methodName)) }
        if let role = method.role, !caller.roles.contains(role) {
            return .failure(.permissionDenied())
        }
        do {
            return VarlinkReply(parameters: try await method.handler(core, Parameters(values: call.parameters)))
        } catch {
            return .failure(error)
        }
    }

    static func table() -> [String: Method] {
        var t: [String: Method] = [:]
        func add(_ name: String, _ role: Role?, _ handler: @escaping Handler) {
            t[name] = Method(role: role, handler: handler)
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
        add("io.ukey.Boot.Measure", .hypervisor) { core, p throws(VarlinkError) in
            let entity = try p.string("entity", maxLength: 64), component = try p.string("component", maxLength: 64)
            let session = try p.optionalString("session", maxLength: 256)
            if let digest = try p.digest("digest") {
                return try await core.measure(entity: entity, component: component, digest: digest, session: session)
            }
            let path: String, algorithm: HashAlgorithm
            if let given = try p.optionalString("path") {
                (path, algorithm) = (given, await core.expectedAlgorithm(entity: entity, component: component))
            } else {
                (path, algorithm) = try await core.fileHint(entity: entity, component: component)
            }
            // Hashed here, outside the core actor: a large image must not hold up other calls.
            let digest: Digest
            do {
                digest = try FileDigester.digest(ofFileAt: path, using: algorithm)
            } catch {
                throw VarlinkError("io.ukey.Boot.CannotHash", ["path": .string(path), "reason": .string("\(error)")])
            }
            return try await core.measure(entity: entity, component: component, digest: digest, session: session)
        }
        add("io.ukey.Boot.Chain", nil) { core, _ throws(VarlinkError) in try await core.chainDescription() }
        add("io.ukey.Boot.Quote", nil) { core, p throws(VarlinkError) in
            try await core.quote(nonce: try p.base64("nonce", maxLength: 64), registers: try p.optionalInts("registers"))
        }
        add("io.ukey.Boot.EventLog", nil) { core, _ throws(VarlinkError) in try await core.eventLogData() }
        add("io.ukey.Boot.Reset", .admin) { core, _ throws(VarlinkError) in try await core.resetBoot() }

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
            return try await core.checkExec(vm: try p.string("vm", maxLength: 64), path: try p.string("path"), digest: digest)
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
                results.append(.object(try await core.checkExec(vm: vm, path: path, digest: digest)))
            }
            return ["results": .array(results)]
        }

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
            let text = try p.string("policy", maxLength: PolicyParser.maxPolicyBytes)
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
