import UkeyCore
import UkeyToken

/// `io.ukey.Boot.States` and `io.ukey.Boot.AcceptState`: what each VM's writable state was
/// sealed as, and an administrator's acceptance of a state ukeyd did not seal (`ukeyctl vm
/// status`, `ukeyctl vm accept`).
extension Boot {
    /// Each VM with writable components: what is sealed for each, and (hashing the file) whether
    /// it holds that now.
    enum States: ServiceMethod {
        static let name = "io.ukey.Boot.States"
        static let role: Role? = .admin

        struct Request: Sendable {
            let entity: String?
            /// Hash each file to say whether it holds what its next start needs.
            let hash: Bool
        }

        struct Component: Sendable {
            let component: String
            let path: String?
            /// The policy's first known-good state.
            let base: Digest
            /// What the next start must find: the seal, or the base when there is none.
            let expected: Digest
            let sealed: Digest?
            let sealedAt: String?
            let by: String?
            let boot: String?
            let uid: UInt32?
            /// With `hash`: what the file holds now, and whether that is `expected`.
            let current: Digest?
            let matches: Bool?
            /// With `hash`: why the file could not be hashed.
            let problem: String?
        }

        struct VM: Sendable {
            let entity: String
            /// Its state in this boot's chain.
            let state: String
            let reason: String?
            let components: [Component]
        }

        struct Reply: Sendable {
            let vms: [VM]
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            _ = try call.services.tokens.require()
            let boot = call.services.boot
            var vms = try await boot.stateReport(entity: request.entity)
            guard request.hash else { return Reply(vms: vms) }
            for (v, vm) in vms.enumerated() {
                var components: [Component] = []
                for c in vm.components {
                    var current: Digest?
                    var problem: String?
                    if let path = c.path {
                        let item = BootService.SealItem(
                            component: c.component,
                            path: path,
                            algorithm: c.expected.algorithm,
                            previous: c.expected,
                            base: c.base
                        )
                        switch await BootService.hashState(item, caller: call.caller).digest {
                        case .success(let digest): current = digest
                        case .failure(let failure): problem = failure.reason
                        }
                    } else {
                        problem = "ukeyd knows no file for it"
                    }
                    components.append(
                        Component(
                            component: c.component,
                            path: c.path,
                            base: c.base,
                            expected: c.expected,
                            sealed: c.sealed,
                            sealedAt: c.sealedAt,
                            by: c.by,
                            boot: c.boot,
                            uid: c.uid,
                            current: current,
                            matches: current.map { $0 == c.expected },
                            problem: problem
                        )
                    )
                }
                vms[v] = VM(entity: vm.entity, state: vm.state, reason: vm.reason, components: components)
            }
            return Reply(vms: vms)
        }
    }

    /// Seals a VM's writable state as it is now (admin): after a stop ukeyd did not hear of (a
    /// host that lost power), or a change the administrator made on purpose. Audited with the old
    /// and new digests and the administrator's uid. A VM that is running is refused: its state is
    /// sealed when it stops.
    enum AcceptState: ServiceMethod {
        static let name = "io.ukey.Boot.AcceptState"
        static let role: Role? = .admin

        struct Request: Sendable {
            let entity: String
            /// One component; nil: every writable component of the VM.
            let component: String?
            /// The file to hash; nil: the one last measured for it, else its seal's, else the
            /// policy's file hint.
            let path: String?
        }

        struct Reply: Sendable {
            let sealed: [Release.Sealed]
            /// The VM was refused as changed-since-stop in this boot: it is released, so its next
            /// start is judged afresh against what was just sealed.
            let released: [String]
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            _ = try call.services.tokens.require()
            let boot = call.services.boot
            let items = try await boot.acceptPlan(
                entity: request.entity,
                component: request.component,
                path: request.path
            )
            var hashed: [BootService.HashedState] = []
            for item in items {
                let state = await BootService.hashState(item, caller: call.caller)
                if case .failure(let failure) = state.digest {
                    throw .cannotHash(path: item.path ?? item.component, reason: failure.reason)
                }
                hashed.append(state)
            }
            let uid = call.caller.uid
            return try await boot.gate.serialized { () async throws(ServiceError) in
                try await boot.commitAccept(entity: request.entity, hashed: hashed, uid: uid)
            }
        }
    }
}

extension BootService {
    /// The VMs with writable components (or the one asked about), as the sealed store has them.
    func stateReport(entity: String?) throws(ServiceError) -> [Boot.States.VM] {
        guard let loaded = policy.loaded else { throw .noPolicy }
        if let entity, loaded.expected.entity(named: entity) == nil { throw .unknownEntity(entity) }
        var vms: [Boot.States.VM] = []
        for known in loaded.expected.entities where entity == nil || known.name == entity {
            let writable = known.components.filter(\.writable)
            guard !writable.isEmpty || known.name == entity else { continue }
            let status = chain?.status(of: known.name)
            vms.append(
                Boot.States.VM(
                    entity: known.name,
                    state: (status?.state ?? .pending).rawValue,
                    reason: status?.reason?.rawValue,
                    components: writable.map { component in
                        let seal = seals.seal(of: known.name, component.name)
                        let expected = seals.expected(vm: known.name, component: component) ?? component.expected
                        return Boot.States.Component(
                            component: component.name,
                            path: statePath(entity: known.name, component: component.name),
                            base: component.expected,
                            expected: expected,
                            sealed: seal.flatMap { try? Digest(parsing: $0.digest) },
                            sealedAt: seal?.sealedAt,
                            by: seal?.by,
                            boot: seal?.boot,
                            uid: seal?.uid,
                            current: nil,
                            matches: nil,
                            problem: nil
                        )
                    }
                )
            )
        }
        return vms
    }

    /// What an acceptance of `entity`'s state hashes; refused for a VM that is running.
    func acceptPlan(entity: String, component: String?, path: String?) throws(ServiceError) -> [SealItem] {
        guard let loaded = policy.loaded else { throw .noPolicy }
        guard let known = loaded.expected.entity(named: entity) else { throw .unknownEntity(entity) }
        let writable = known.components.filter(\.writable)
        guard !writable.isEmpty else {
            throw .stateNotAccepted(
                entity: entity,
                reason: "\(entity) has no writable component in the policy in force"
            )
        }
        var chosen = writable
        if let component {
            guard let one = writable.first(where: { $0.name == component }) else {
                if known.component(named: component) != nil {
                    throw .stateNotAccepted(
                        entity: entity,
                        reason: "\(entity)/\(component) is not writable: it is measured against the policy's digest"
                    )
                }
                throw .unknownComponent(entity: entity, component: component)
            }
            chosen = [one]
        } else if path != nil, writable.count > 1 {
            throw .stateNotAccepted(
                entity: entity,
                reason:
                    "\(entity) has \(writable.count) writable components; name the one the path is for (--component)"
            )
        }
        if chain?.state(of: entity) == .trusted {
            throw .stateNotAccepted(
                entity: entity,
                reason: "\(entity) is running (trusted in this boot): its state is sealed when it stops"
            )
        }
        return try chosen.map { (c: Component) throws(ServiceError) -> SealItem in
            guard let file = path ?? statePath(entity: entity, component: c.name) else {
                throw .stateNotAccepted(
                    entity: entity,
                    reason: "ukeyd knows no file for \(entity)/\(c.name); give its path"
                )
            }
            return SealItem(
                component: c.name,
                path: file,
                algorithm: c.expected.algorithm,
                previous: seals.expected(vm: entity, component: c) ?? c.expected,
                base: c.expected
            )
        }
    }

    /// Inside the gate: seals the accepted states, and releases a VM this boot refused as
    /// changed-since-stop, so its next start is judged against them.
    func commitAccept(
        entity: String,
        hashed: [HashedState],
        uid: UInt32
    ) async throws(ServiceError) -> Boot.AcceptState.Reply {
        if chain?.state(of: entity) == .trusted {
            throw .stateNotAccepted(
                entity: entity,
                reason: "\(entity) started while its state was hashed: its state is sealed when it stops"
            )
        }
        // Sealed again (a start, a run and a stop) while this was hashed: the newer seal stands.
        for state in hashed {
            guard let component = writableComponents(of: entity).first(where: { $0.name == state.item.component }),
                (seals.expected(vm: entity, component: component) ?? component.expected) == state.item.previous
            else {
                throw .stateNotAccepted(
                    entity: entity,
                    reason:
                        "\(entity)/\(state.item.component) was sealed again while it was hashed; look at it again (ukeyctl vm status)"
                )
            }
        }
        let (sealed, unsealed) = await commitSeals(entity: entity, hashed: hashed, by: "accept", uid: uid)
        if let failed = unsealed.first {
            throw .stateNotAccepted(entity: entity, reason: "\(failed.component): \(failed.reason)")
        }
        var released: [String] = []
        if let status = chain?.status(of: entity), status.state == .untrusted, status.reason == .changedSinceStop,
            case .released(let entities) = try release(entity: entity)
        {
            released = entities
        }
        return Boot.AcceptState.Reply(sealed: sealed, released: released)
    }
}
