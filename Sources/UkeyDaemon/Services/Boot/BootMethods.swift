import UkeyCore
import UkeyPolicy
import UkeyToken

/// `io.ukey.Boot`: measure, then decide (architecture.md section 1).
enum Boot {
    /// Measures one component: by digest (queued for the next batch), by a path the caller
    /// may read, or by the file the policy names.
    enum Measure: QueuedMethod {
        static let name = "io.ukey.Boot.Measure"
        static let role: Role? = .hypervisor

        struct Request: Sendable {
            let entity: String
            let component: String
            let digest: Digest?
            let path: String?
            let session: String?
            /// The VM whose start this measurement is for: ukeyd then holds the file to the
            /// identity it hashed until that VM's QEMU has opened its files (`OpenGuard`).
            let hold: String?
            /// Whom `session` (a start ticket, or the caller's own session) authorises, resolved
            /// as the call comes in, where the caller is known (`authorised(in:)`).
            var startAuthority: StartTickets.Authority? = nil
            /// Whether the digest is one hashed earlier in this boot from the same, unchanged
            /// file (`MeasurementCache`).
            var cached = false
            /// The hashed file's `device:inode:generation`, when ukeyd hashed `path`.
            var file: String? = nil

            /// The request with its credential resolved for the caller: a start ticket is taken
            /// for this process here, in the order the calls arrive.
            func authorised(in call: CallContext) -> Request {
                guard session != nil else { return self }
                var request = self
                request.startAuthority = call.services.sessions.startAuthority(
                    session,
                    entity: entity,
                    caller: call.caller
                )
                return request
            }
        }

        struct Reply: Sendable {
            let verdict: String
            let match: Bool
            let load: Bool
            let reason: String?
            let register: Int
            let eventIndex: Int
            let digest: Digest
            let cached: Bool
        }

        static func submit(
            _ request: Request,
            in call: CallContext,
            origin: MeasurementTicket.Origin
        ) async throws(ServiceError) -> MeasurementTicket? {
            guard let digest = request.digest else { return nil }
            return try await call.services.boot.submit(request.authorised(in: call), digest: digest, origin: origin)
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            var request = request.authorised(in: call)
            let boot = call.services.boot
            if let digest = request.digest { return try await boot.measure(request, digest: digest) }
            // Hashed off the daemon's actor and the cooperative pool, within a deadline: a large
            // image must not hold up other calls, nor a FIFO hang them. A caller's path is opened
            // with the caller's own rights; the policy's file hint with the daemon's.
            let policy = call.services.policy
            guard let given = request.path else {
                let (path, algorithm) = try await policy.fileHint(entity: request.entity, component: request.component)
                let digest: Digest
                do throws(FileDigester.Failure) {
                    digest = try await PeerFileHasher.digest(ofPolicyFile: path, using: algorithm)
                } catch {
                    throw .cannotHash(path: error.path, reason: error.reason)
                }
                return try await boot.measure(request, digest: digest)
            }
            let (algorithm, writable) = await policy.hashing(entity: request.entity, component: request.component)
            var guardian: OpenGuard?
            if request.hold != nil {
                // Held: the path must be one nobody but root can redirect, the guard must be
                // there, and the pin is taken before the reply lets QEMU start.
                if let why = SecurePath.refusal(given) {
                    throw .cannotHash(path: given, reason: "cannot be held to what ukeyd measures: \(why)")
                }
                do throws(OpenGuard.Failure) {
                    guardian = try call.services.openGuard.get()
                } catch {
                    throw .cannotHash(path: given, reason: error.description)
                }
            }
            // A read-only file unchanged since it was hashed in this boot is not read again; a
            // writable one (the VM's own state) always is.
            let hashed: PeerFileHasher.Hashed
            do throws(FileDigester.Failure) {
                hashed = try await PeerFileHasher.digestAndIdentity(
                    ofCallerPath: given,
                    uid: call.caller.uid,
                    gid: call.caller.gid,
                    using: algorithm,
                    cache: writable ? nil : call.services.measurementCache
                )
            } catch {
                throw .cannotHash(path: error.path, reason: error.reason)
            }
            if let guardian, let owner = request.hold {
                do throws(OpenGuard.Failure) {
                    try guardian.hold(given, owner: owner, identity: hashed.identity.pin)
                } catch {
                    throw .cannotHash(path: given, reason: error.description)
                }
            }
            request.cached = hashed.cached
            request.file = hashed.identity.file
            return try await boot.measure(request, digest: hashed.digest)
        }
    }

    /// The chain of the current boot.
    enum Chain: ServiceMethod {
        static let name = "io.ukey.Boot.Chain"
        static let role: Role? = nil

        struct Entity: Sendable {
            let name: String
            let parent: String
            let kind: String
            let state: String
            let reason: String?
            let register: Int
            let measured: [String: Digest]
            let components: [String]
        }

        struct Reply: Sendable {
            let bootID: String
            let mode: String
            let entities: [Entity]
        }

        static func answer(_ request: NoParameters, in call: CallContext) async throws(ServiceError) -> Reply {
            _ = try call.services.tokens.require()
            return await call.services.boot.chainReply()
        }
    }

    /// A signed quote of the registers, with the certificates that vouch for its key.
    enum Quote: ServiceMethod {
        static let name = "io.ukey.Boot.Quote"
        static let role: Role? = nil

        struct Request: Sendable {
            let nonce: [UInt8]
            let registers: [Int]?
            /// The register bank quoted (sha256 unless asked: sm3 where the registers have it).
            let bank: HashAlgorithm
        }

        struct Reply: Sendable {
            let quote: [UInt8]
            let signature: [UInt8]
            let certificate: String
            let chain: String
            let attestationKey: String
            let format: String
            let algorithm: String
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let tokens = call.services.tokens
            let token = try tokens.require()
            // What the caller chose is checked here, by field; the token then judges the bank alone.
            guard (1...UkeyQuote.maxNonce).contains(request.nonce.count) else { throw .invalidParameter("nonce") }
            if let registers = request.registers {
                guard !registers.isEmpty, Set(registers).count == registers.count,
                    registers.allSatisfy({ (0..<ExpectedSet.registerCount).contains($0) })
                else { throw .invalidParameter("registers") }
            }
            let (selection, logDigest) = await call.services.boot.quoteInputs(registers: request.registers)
            do {
                let signed = try await token.quote(
                    nonce: request.nonce,
                    registers: selection,
                    eventLog: logDigest,
                    bank: request.bank
                )
                let chain = try await tokens.tokenKeysCAPEM(of: token)
                return Reply(
                    quote: signed.quote,
                    signature: signed.signature,
                    certificate: signed.certificatePEM,
                    chain: chain,
                    attestationKey: signed.attestationKeyPEM,
                    format: signed.format,
                    algorithm: signed.algorithm
                )
            } catch let error as TokenError {
                // Nonce and registers were checked above: what the token refuses is the bank.
                if error.code == .invalidArgument { throw .invalidParameter("bank") }
                throw ServiceError(error)
            } catch {
                throw .internalError
            }
        }
    }

    /// The TCG PC Client crypto-agile event log of this boot.
    enum EventLog: ServiceMethod {
        static let name = "io.ukey.Boot.EventLog"
        static let role: Role? = nil

        struct Reply: Sendable {
            let format = "tcg-pfp"
            let data: [UInt8]
        }

        static func answer(_ request: NoParameters, in call: CallContext) async throws(ServiceError) -> Reply {
            _ = try call.services.tokens.require()
            return Reply(data: await call.services.boot.eventLog.serialized())
        }
    }

    /// A new boot session (admin): registers zeroed, chain reset.
    enum Reset: ServiceMethod {
        static let name = "io.ukey.Boot.Reset"
        static let role: Role? = .admin

        struct Reply: Sendable {
            let bootID: String
        }

        static func answer(_ request: NoParameters, in call: CallContext) async throws(ServiceError) -> Reply {
            let token = try call.services.tokens.require()
            let boot = call.services.boot
            let newBoot: String
            do {
                newBoot = try await boot.gate.serialized { try await boot.reset(token: token) }
                // A new boot session measures everything afresh.
                call.services.measurementCache.clear()
            } catch {
                boot.logger.error("reset failed: \(error)")
                throw .internalError
            }
            boot.logger.notice("boot reset by an administrator: new boot \(newBoot)")
            return Reply(bootID: newBoot)
        }
    }

    /// A VM stopped (the libvirt hook on release): it and what it loaded are measured afresh on
    /// its next start, unless it was found untrusted in this boot, which a stop does not undo.
    /// A VM's QEMU is running: it has opened every file it loads, so ukeyd stops holding them
    /// to their measured identity (libvirt's `started begin`; ukey-qemu once QEMU is up).
    enum Started: ServiceMethod {
        static let name = "io.ukey.Boot.Started"
        static let role: Role? = .hypervisor

        struct Request: Sendable {
            let entity: String
            /// "begin": a new start of the VM begins (the gate, before it measures): what an
            /// earlier attempt held is let go, and nothing is said about QEMU.
            let phase: String?
        }

        struct Reply: Sendable {
            /// How many measured files were held for the VM's start.
            let held: Int
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            // The start is over: a ticket it took is spent.
            call.services.sessions.endStart(of: request.entity)
            let (held, refused) = call.services.openGuard.release(owner: request.entity)
            if request.phase != "begin" {
                // QEMU is up on what was measured: what it writes to the VM's disk is sealed
                // as the VM's state when it stops.
                let boot = call.services.boot
                _ = await boot.gate.serialized { await boot.noteStarted(entity: request.entity, refusedOpen: refused) }
            }
            return Reply(held: held)
        }
    }

    enum Release: ServiceMethod {
        static let name = "io.ukey.Boot.Release"
        static let role: Role? = .hypervisor

        struct Request: Sendable {
            let entity: String
        }

        /// A writable component sealed at this stop.
        struct Sealed: Sendable {
            let component: String
            /// What it held at its start.
            let previous: Digest
            let digest: Digest
        }

        /// A writable component not sealed, and why: its next start is refused unless it holds
        /// its old seal again.
        struct Unsealed: Sendable {
            let component: String
            let reason: String
        }

        struct Reply: Sendable {
            let released: [String]
            let state: String
            let reason: String?
            let sealed: [Sealed]
            let unsealed: [Unsealed]
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            _ = try call.services.tokens.require()
            // Its QEMU is gone: nothing of its start is held any more, and no ticket serves it.
            call.services.openGuard.release(owner: request.entity)
            call.services.sessions.endStart(of: request.entity)
            let boot = call.services.boot
            guard let loaded = await call.services.policy.loaded, await boot.chain != nil else { throw .noPolicy }
            guard request.entity != Entity.rootName, loaded.expected.entity(named: request.entity) != nil else {
                throw .unknownEntity(request.entity)
            }
            // The VM's writable state, hashed off the actor with the caller's rights, then
            // sealed durably before the release is journaled and answered.
            let plan = await boot.sealPlan(for: request.entity)
            var hashed: [BootService.HashedState] = []
            for item in plan.items {
                hashed.append(await BootService.hashState(item, caller: call.caller))
            }
            let (release, sealed, unsealedNow) = try await boot.gate.serialized { () async throws(ServiceError) in
                try await boot.releaseSealing(entity: request.entity, hashed: hashed)
            }
            var unsealed = unsealedNow
            if let refusal = plan.refusal {
                unsealed += await boot.writableComponents(of: request.entity).map {
                    Unsealed(component: $0.name, reason: refusal)
                }
            }
            switch release {
            case .released(let entities):
                boot.logger.notice("released \(entities.joined(separator: ", ")): measured afresh on the next start")
                return Reply(released: entities, state: "pending", reason: nil, sealed: sealed, unsealed: unsealed)
            case .stillUntrusted(let reason):
                return Reply(
                    released: [],
                    state: "untrusted",
                    reason: reason?.rawValue,
                    sealed: sealed,
                    unsealed: unsealed
                )
            }
        }
    }
}

extension BootService {
    /// The chain as `Boot.Chain` answers it: every entity of the policy in force, in its order.
    func chainReply() -> Boot.Chain.Reply {
        var entities: [Boot.Chain.Entity] = []
        if let loaded = policy.loaded, let chain {
            for entity in loaded.expected.entities {
                let status = chain.status(of: entity.name) ?? EntityStatus()
                entities.append(
                    Boot.Chain.Entity(
                        name: entity.name,
                        parent: entity.parent,
                        kind: entity.kind.rawValue,
                        state: status.state.rawValue,
                        reason: status.reason?.rawValue,
                        register: entity.register,
                        measured: status.measured,
                        components: entity.components.map(\.name)
                    )
                )
            }
        }
        return Boot.Chain.Reply(bootID: bootID, mode: policy.mode.rawValue, entities: entities)
    }

    /// The registers a quote covers (all the policy uses when none are named) and the digest of
    /// the event log it binds.
    func quoteInputs(registers: [Int]?) -> (registers: [Int], eventLog: Digest) {
        (registers ?? policy.loaded?.registers ?? [8], eventLogDigestNow())
    }
}

extension PolicyService {
    /// The file the policy names for a component, when the hypervisor sends neither digest nor path.
    func fileHint(entity: String, component: String) throws(ServiceError) -> (path: String, algorithm: HashAlgorithm) {
        guard let loaded else { throw .noPolicy }
        guard let expected = loaded.expected.entity(named: entity) else { throw .unknownEntity(entity) }
        guard let known = expected.component(named: component) else {
            throw .unknownComponent(entity: entity, component: component)
        }
        guard let file = loaded.file(entity: entity, component: known.name) else { throw .invalidParameter("path") }
        return (file, known.expected.algorithm)
    }

    /// The algorithm the policy expects for a component (sha256 when unknown), and whether it is
    /// writable (the VM's own state, never taken from the measurement cache).
    func hashing(entity: String, component: String) -> (algorithm: HashAlgorithm, writable: Bool) {
        let known = loaded?.expected.entity(named: entity)?.component(named: component)
        return (known?.expected.algorithm ?? .sha256, known?.writable ?? false)
    }
}
