/// The boot-phase trust state machine: the paper's Theorem 1 as code (section 3.1).
///
/// With s_1 = `root`, boot is trusted iff every entity was validated by its parent: each component
/// hashed and compared with H (`validate(s_i, hash(s_j), h_j)`) while the parent was trusted. The
/// machine is sans-IO: `measure` returns the verdict and the effects (register extend, event,
/// state changes) and the caller carries them out; nothing here touches a file, a clock or a TPM.
///
/// Rules (architecture.md section 1):
/// - `root` is trusted unconditionally and cannot be measured;
/// - measuring an entity whose parent is not trusted makes it untrusted (`parent-not-trusted`);
/// - a mismatch makes it untrusted (`digest-mismatch`) and every descendant untrusted
///   (`ancestor-untrusted`), even ones already trusted;
/// - nothing becomes trusted again within a boot; only `reset` starts a new boot;
/// - a VM that stops is released: if it (and what it loaded) was not found untrusted, it is pending
///   again and is measured afresh on its next start; an untrusted one stays untrusted, released or
///   not, until the next boot, so stopping a tampered VM never clears its taint;
/// - a writable component (a VM's own disk) is judged against the state sealed at the VM's last
///   stop, given with the measurement; a mismatch is `changed-since-stop`, which a release clears
///   (with the taint it passed down): the seal goes on refusing the start, not the boot. Any
///   other cause found after it replaces it, so a release never clears a tampered component;
/// - every measurement is recorded whatever the verdict: the first effect is always the extend.
public struct BootChain: Sendable {
    public let expected: ExpectedSet
    public private(set) var bootID: String
    private var statuses: [String: EntityStatus]

    public init(expected: ExpectedSet, bootID: String) {
        self.expected = expected
        self.bootID = bootID
        self.statuses = Dictionary(uniqueKeysWithValues: expected.entities.map { ($0.name, EntityStatus()) })
    }

    /// The state of `name`; `root` is always trusted.
    public func state(of name: String) -> EntityState? {
        name == Entity.rootName ? .trusted : statuses[name]?.state
    }

    /// The full status of a declared entity (nil for `root` and unknown names).
    public func status(of name: String) -> EntityStatus? {
        statuses[name]
    }

    /// Records that `component` of `entity` measured as `digest` and decides the entity's state.
    ///
    /// Throws only for a name that the expected set does not hold; every real measurement gives
    /// an outcome, trusted or not.
    /// `sealed`: for a writable component, the state ukeyd sealed at the VM's last stop (nil: none
    /// yet, so the policy's first known-good digest); ignored for any other component.
    public mutating func measure(
        entity name: String,
        component componentName: String,
        digest: Digest,
        sealed: Digest? = nil
    ) throws(UkeyCoreError) -> MeasurementOutcome {
        guard name != Entity.rootName else {
            throw UkeyCoreError(.rootNotMeasurable, "'root' is the trusted root itself and is never measured")
        }
        guard let entity = expected.entity(named: name), var status = statuses[name] else {
            throw UkeyCoreError(.unknownEntity, "no entity '\(name)' in the policy")
        }
        guard let component = entity.component(named: componentName) else {
            let known = entity.components.map(\.name).joined(separator: ", ")
            throw UkeyCoreError(
                .unknownComponent,
                "entity '\(name)' has no component '\(componentName)'; it has: \(known)"
            )
        }

        var effects: [ChainEffect] = [
            .extend(register: entity.register, digest: digest, eventData: "\(name)/\(componentName)")
        ]
        let expectedDigest = component.writable ? (sealed ?? component.expected) : component.expected
        let match = digest == expectedDigest
        let parentTrusted = state(of: entity.parent) == .trusted
        status.measured[componentName] = digest

        if status.state == .untrusted, status.reason == .changedSinceStop,
            !parentTrusted || (!match && !component.writable)
        {
            // changed-since-stop is the one taint a release clears: a cause found after it that
            // no release clears (a tampered kernel, a broken chain above) takes its place.
            status.reason = parentTrusted ? .digestMismatch : .parentNotTrusted
            effects.append(.becameUntrusted(entity: name, reason: status.reason!))
        } else if status.state != .untrusted {
            if !parentTrusted {
                statuses[name] = status
                effects += untrust(name, reason: .parentNotTrusted)
                status = statuses[name]!
            } else if !match {
                statuses[name] = status
                effects += untrust(name, reason: component.writable ? .changedSinceStop : .digestMismatch)
                status = statuses[name]!
            } else {
                status.matched.insert(componentName)
                if status.state == .pending && status.matched.count == entity.components.count {
                    status.state = .trusted
                    effects.append(.becameTrusted(entity: name))
                }
            }
        }
        statuses[name] = status
        return MeasurementOutcome(
            entity: name,
            component: componentName,
            digest: digest,
            state: status.state,
            match: match,
            reason: status.reason,
            parentTrusted: parentTrusted,
            register: entity.register,
            effects: effects
        )
    }

    /// What a release did.
    public enum Release: Sendable, Equatable {
        /// The entity and its descendants that were not untrusted are pending again.
        case released([String])
        /// The entity is untrusted; it stays so for the rest of the boot.
        case stillUntrusted(UntrustedReason?)
    }

    /// A VM stopped (`io.ukey.Boot.Release`): it and every descendant that is not untrusted go back
    /// to pending, their measurements forgotten by the chain (not by the registers or the event log:
    /// what was extended stays extended). Its parent is untouched, so a shared base image stays
    /// trusted for the other VMs. An untrusted entity stays untrusted, but for one whose writable
    /// state was not what was sealed (`changed-since-stop`): it is released with the descendants
    /// it tainted, and its seal refuses the next start until the state is accepted.
    public mutating func release(entity name: String) throws(UkeyCoreError) -> Release {
        guard name != Entity.rootName else {
            throw UkeyCoreError(.rootNotMeasurable, "'root' is the trusted root itself and is never released")
        }
        guard let status = statuses[name] else {
            throw UkeyCoreError(.unknownEntity, "no entity '\(name)' in the policy")
        }
        let changedState = status.state == .untrusted && status.reason == .changedSinceStop
        guard status.state != .untrusted || changedState else { return .stillUntrusted(status.reason) }
        var released: [String] = []
        for target in [name] + expected.descendants(of: name) {
            guard let current = statuses[target] else { continue }
            let tainted = current.state == .untrusted
            // Below a VM released from changed-since-stop, the taint it passed down goes with it.
            guard !tainted || target == name || (changedState && current.reason == .ancestorUntrusted) else { continue }
            statuses[target] = EntityStatus()
            released.append(target)
        }
        return .released(released)
    }

    /// Starts a new boot: every entity back to pending, with a new boot id.
    public mutating func reset(bootID newBootID: String) -> [ChainEffect] {
        let previous = bootID
        bootID = newBootID
        for name in statuses.keys { statuses[name] = EntityStatus() }
        return [.reset(previousBootID: previous, bootID: newBootID)]
    }

    /// Marks `name` untrusted and taints every descendant that is not already untrusted.
    private mutating func untrust(_ name: String, reason: UntrustedReason) -> [ChainEffect] {
        var effects: [ChainEffect] = []
        for (target, why) in [(name, reason)] + expected.descendants(of: name).map({ ($0, .ancestorUntrusted) }) {
            guard var status = statuses[target], status.state != .untrusted else { continue }
            status.state = .untrusted
            status.reason = why
            statuses[target] = status
            effects.append(.becameUntrusted(entity: target, reason: why))
        }
        return effects
    }
}
