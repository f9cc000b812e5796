import UkeyCore
import UkeyToken

/// `io.ukey.Boot.States` and `io.ukey.Boot.AcceptState`: what each VM's writable state was
/// sealed as, and an administrator's acceptance of a state ukeyd did not seal (`ukeyctl vm
/// status`, `ukeyctl vm accept`).
extension Boot.States: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        _ = try call.services.tokens.require()
        let boot = call.services.boot
        var vms = try await boot.stateReport(entity: request.entity)
        guard request.hash == true else { return Reply(vms: vms) }
        for (v, vm) in vms.enumerated() {
            var components: [Component] = []
            for c in vm.components {
                var current: String?
                var problem: String?
                if let path = c.path, let expected = try? Digest(parsing: c.expected),
                    let base = try? Digest(parsing: c.base)
                {
                    let item = BootService.SealItem(
                        component: c.component,
                        path: path,
                        algorithm: expected.algorithm,
                        previous: expected,
                        base: base
                    )
                    switch await BootService.hashState(item, caller: call.caller).digest {
                    case .success(let digest): current = digest.description
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

extension Boot.AcceptState: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
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
        return try await boot.commitAccept(entity: request.entity, hashed: hashed, uid: uid)
    }
}

extension BootService {
    /// The VMs with writable components (or the one asked about), as the sealed store has them.
    func stateReport(entity: String?) throws(APIError) -> [Boot.States.VM] {
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
                            base: component.expected.description,
                            expected: expected.description,
                            sealed: seal.flatMap { try? Digest(parsing: $0.digest) }?.description,
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
    func acceptPlan(entity: String, component: String?, path: String?) throws(APIError) -> [SealItem] {
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
        return try chosen.map { (c: Component) throws(APIError) -> SealItem in
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

    /// In the gate: seals the accepted states, and releases a VM this boot refused as
    /// changed-since-stop, so its next start is judged against them.
    func commitAccept(
        entity: String,
        hashed: [HashedState],
        uid: UInt32
    ) async throws(APIError) -> Boot.AcceptState.Reply {
        try await gate.serialized { () async throws(APIError) in
            try await commitAcceptInGate(entity: entity, hashed: hashed, uid: uid)
        }
    }

    private func commitAcceptInGate(
        entity: String,
        hashed: [HashedState],
        uid: UInt32
    ) async throws(APIError) -> Boot.AcceptState.Reply {
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
