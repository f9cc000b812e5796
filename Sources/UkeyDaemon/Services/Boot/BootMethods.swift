import UkeyCore
import UkeyPolicy
import UkeyToken

/// `io.ukey.Boot` as ukeyd answers it: measure, then decide (architecture.md section 1).
extension Boot.Measure: QueuedMethod {
    /// A measurement as the daemon takes it: the request, with what the daemon learnt of it.
    struct Work: Sendable {
        let entity: String
        let component: String
        let path: String?
        let session: String?
        let hold: String?
        /// Whom `session` (a start ticket, or the caller's own session) authorises, resolved
        /// as the call comes in, where the caller is known (`authorised(in:)`).
        var startAuthority: StartTickets.Authority? = nil
        /// Whether the digest is one hashed earlier in this boot from the same, unchanged
        /// file (`MeasurementCache`).
        var cached = false
        /// The hashed file's `device:inode:generation`, when ukeyd hashed `path`.
        var file: String? = nil

        init(_ request: Request) {
            entity = request.entity
            component = request.component
            path = request.path
            session = request.session
            hold = request.hold
        }

        /// The work with its credential resolved for the caller: a start ticket is taken for
        /// this process here, in the order the calls arrive.
        func authorised(in call: CallContext) -> Work {
            guard session != nil else { return self }
            var work = self
            work.startAuthority = call.services.sessions.startAuthority(session, entity: entity, caller: call.caller)
            return work
        }
    }

    /// The request's digest, when it gives one.
    static func digest(of request: Request) throws(APIError) -> Digest? {
        guard let text = request.digest else { return nil }
        do {
            return try Digest(parsing: text)
        } catch {
            throw .invalidParameter("digest")
        }
    }

    static func submit(
        _ request: Request,
        in call: CallContext,
        origin: MeasurementTicket.Origin
    ) async throws(APIError) -> MeasurementTicket? {
        guard let digest = try digest(of: request) else { return nil }
        return try await call.services.boot.submit(Work(request).authorised(in: call), digest: digest, origin: origin)
    }

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        var work = Work(request).authorised(in: call)
        let boot = call.services.boot
        if let digest = try digest(of: request) { return try await boot.measure(work, digest: digest) }
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
            return try await boot.measure(work, digest: digest)
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
        work.cached = hashed.cached
        work.file = hashed.identity.file
        return try await boot.measure(work, digest: hashed.digest)
    }
}

extension Boot.Chain: ServedMethod {
    static func answer(_ request: Empty, in call: CallContext) async throws(APIError) -> Reply {
        _ = try call.services.tokens.require()
        return await call.services.boot.chainReply()
    }
}

extension Boot.EntityState: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        _ = try call.services.tokens.require()
        guard let entity = await call.services.boot.chainReply().entities.first(where: { $0.name == request.name })
        else { throw .unknownEntity(request.name) }
        return Reply(entity: entity)
    }
}

extension Boot.Quote: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let tokens = call.services.tokens
        let token = try tokens.require()
        // Nonce and registers were checked as the request was read; the token judges the bank.
        guard let bank = HashAlgorithm(rawValue: request.bank ?? HashAlgorithm.sha256.rawValue) else {
            throw .invalidParameter("bank")
        }
        let (selection, logDigest) = await call.services.boot.quoteInputs(registers: request.registers)
        do {
            let signed = try await token.registers.quote(
                nonce: request.nonce.bytes,
                registers: selection,
                eventLog: logDigest,
                bank: bank
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
            throw APIError(error)
        } catch {
            throw .internalError
        }
    }
}

extension Boot.EventLog: ServedMethod {
    static func answer(_ request: Empty, in call: CallContext) async throws(APIError) -> Reply {
        _ = try call.services.tokens.require()
        return Reply(data: await call.services.boot.eventLog.serialized())
    }
}

extension Boot.Reset: ServedMethod {
    static func answer(_ request: Empty, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        let boot = call.services.boot
        let newBoot: String
        do {
            newBoot = try await boot.reset(token: token)
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

extension Boot.Started: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        // The start is over: a ticket it took is spent.
        call.services.sessions.endStart(of: request.entity)
        let (held, refused) = call.services.openGuard.release(owner: request.entity)
        if request.phase != "begin" {
            // QEMU is up on what was measured: what it writes to the VM's disk is sealed
            // as the VM's state when it stops.
            let boot = call.services.boot
            await boot.noteStarted(entity: request.entity, refusedOpen: refused)
        }
        return Reply(held: held)
    }
}

extension Boot.Release: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        _ = try call.services.tokens.require()
        // Its QEMU is gone: nothing of its start is held any more, and no ticket serves it.
        call.services.openGuard.release(owner: request.entity)
        call.services.sessions.endStart(of: request.entity)
        // Its vTPM serves no other start: stopped before anything else of the release.
        await call.services.vtpm.stop(request.entity)
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
        let (release, sealed, unsealedNow) = try await boot.releaseSealing(entity: request.entity, hashed: hashed)
        var unsealed = unsealedNow
        if let refusal = plan.refusal {
            unsealed += await boot.writableComponents(of: request.entity).map {
                Boot.UnsealedState(component: $0.name, reason: refusal)
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
                        measured: status.measured.mapValues(\.description),
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
    func fileHint(entity: String, component: String) throws(APIError) -> (path: String, algorithm: HashAlgorithm) {
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
