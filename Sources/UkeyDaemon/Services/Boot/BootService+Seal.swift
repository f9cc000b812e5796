import UkeyCore
import UkeyPolicy
import UkeyToken

/// A VM's writable state, sealed when it stops (architecture.md, "A VM's writable state").
///
/// At a release, each writable component of a VM that ran is hashed again (off the actor, with
/// the caller's rights, from the file measured at its start) and the digests are written to the
/// sealed store before the release is journaled and answered. "Ran" is strict: the VM's start was
/// trusted, and its QEMU came up on the files ukeyd measured (`Boot.Started` after the start, no
/// open of a held file refused meanwhile), so what is sealed grew from the measured state by the
/// guest's own writes. A start that failed (QEMU never came up, or an open was refused because
/// the file had been swapped or changed) seals nothing, and the next start finds the old seal.
/// A stop ukeyd never hears of (power loss) seals nothing either: the next start is refused as
/// `changed-since-stop` until an administrator accepts the state (`AcceptState`).
extension BootService {
    /// One writable component to hash and seal.
    struct SealItem: Sendable {
        let component: String
        /// The file to hash; nil when ukeyd knows none (measured by digest, with no file hint).
        let path: String?
        /// The `device:inode:generation` the VM started on: a release seals only that file (nil
        /// for an acceptance, which takes the file at the path as it is).
        var file: String? = nil
        /// A release's item: sealed only from the very file measured at the start.
        var mustBeFile = false
        let algorithm: HashAlgorithm
        /// What it held at its start (its seal then, or the policy's first state).
        let previous: Digest
        /// The policy's digest of it, from which its seals grow.
        let base: Digest
    }

    /// What a release seals, or why it seals nothing.
    struct SealPlan: Sendable {
        var items: [SealItem] = []
        /// Why nothing is sealed although the VM has writable components (nil: sealed, or none).
        var refusal: String?
    }

    /// A component hashed for its seal, or why it could not be.
    struct HashedState: Sendable {
        let item: SealItem
        let digest: Result<Digest, SealFailure>
    }

    struct SealFailure: Error, Sendable {
        let reason: String
    }

    /// Reads the sealed store's VM states at start; a record that does not read stops the start.
    func loadSeals(from token: any TrustedRoot) async throws {
        guard let raw = await token.daemonRecord(VMStateSeals.record) else {
            seals = VMStateSeals()
            return
        }
        do {
            seals = try VMStateSeals(record: raw)
        } catch {
            throw DaemonStartError(
                "the VM states in the sealed store do not read (\(error)); ukeyd will not judge a VM's disk against states it cannot read"
            )
        }
    }

    /// The writable components of `entity` as the policy in force declares them.
    func writableComponents(of entity: String) -> [Component] {
        policy.loaded?.expected.entity(named: entity)?.components.filter(\.writable) ?? []
    }

    /// The file a writable component was last measured from in this boot session, else the one
    /// its seal names, else the policy's file hint.
    func statePath(entity: String, component: String) -> String? {
        if let measured = record.measurements.last(where: {
            $0.entity == entity && $0.component == component && $0.path != nil
        }) {
            return measured.path
        }
        return seals.seal(of: entity, component)?.path ?? policy.loaded?.file(entity: entity, component: component)
    }

    /// What releasing `entity` now would seal.
    func sealPlan(for entity: String) -> SealPlan {
        let writable = writableComponents(of: entity)
        // Pending: it was released already, or never got far; nothing ran, nothing to say.
        guard !writable.isEmpty, let state = chain?.state(of: entity), state != .pending else { return SealPlan() }
        guard state == .trusted else {
            return SealPlan(refusal: "its start was not trusted, so nothing it ran on is sealed")
        }
        guard record.started.contains(entity) else {
            return SealPlan(
                refusal:
                    "its QEMU never came up on the files ukeyd measured (no Boot.Started after its start, or an open of a held file was refused), so what is on its disk now is not sealed"
            )
        }
        var plan = SealPlan()
        for component in writable {
            let measured = record.measurements.last { $0.entity == entity && $0.component == component.name }
            // A writable component is measured only by a path ukeyd hashed itself (the batch
            // refuses anything else), so the file it started on is known.
            plan.items.append(
                SealItem(
                    component: component.name,
                    path: measured?.path,
                    file: measured?.file,
                    mustBeFile: true,
                    algorithm: component.expected.algorithm,
                    previous: measured?.sealed ?? component.expected,
                    base: component.expected
                )
            )
        }
        return plan
    }

    /// Hashes one writable component for its seal, off the actor, opening the file with the
    /// caller's rights; the file must not change while it is read.
    nonisolated static func hashState(_ item: SealItem, caller: Caller) async -> HashedState {
        guard let path = item.path, item.file != nil || !item.mustBeFile else {
            return HashedState(
                item: item,
                digest: .failure(
                    SealFailure(
                        reason: "ukeyd did not hash the file it started on itself, so it cannot know what to seal"
                    )
                )
            )
        }
        do throws(FileDigester.Failure) {
            let hashed = try await PeerFileHasher.digestAndIdentity(
                ofCallerPath: path,
                uid: caller.uid,
                gid: caller.gid,
                using: item.algorithm
            )
            // Another file renamed over the path while the VM ran (QEMU wrote the one it opened):
            // what is there now is not the VM's state.
            if let file = item.file, file != hashed.identity.file {
                return HashedState(
                    item: item,
                    digest: .failure(
                        SealFailure(
                            reason:
                                "\(path) is not the file the VM started on (device:inode:generation \(hashed.identity.file), not \(file)): another file was put at its path"
                        )
                    )
                )
            }
            return HashedState(item: item, digest: .success(hashed.digest))
        } catch {
            return HashedState(
                item: item,
                digest: .failure(SealFailure(reason: "cannot hash \(error.path): \(error.reason)"))
            )
        }
    }

    /// In the gate: seals what was hashed (durably, in one write to the sealed store), then
    /// releases the entity. A VM released or started again since the plan was made seals nothing.
    func releaseSealing(
        entity: String,
        hashed: [HashedState]
    ) async throws(APIError) -> (
        release: BootChain.Release, sealed: [Boot.SealedState], unsealed: [Boot.UnsealedState]
    ) {
        try await gate.serialized { () async throws(APIError) in
            try await releaseSealingInGate(entity: entity, hashed: hashed)
        }
    }

    private func releaseSealingInGate(
        entity: String,
        hashed: [HashedState]
    ) async throws(APIError) -> (
        release: BootChain.Release, sealed: [Boot.SealedState], unsealed: [Boot.UnsealedState]
    ) {
        var sealed: [Boot.SealedState] = []
        var unsealed: [Boot.UnsealedState] = []
        if !hashed.isEmpty {
            if chain?.state(of: entity) == .trusted, record.started.contains(entity) {
                (sealed, unsealed) = await commitSeals(entity: entity, hashed: hashed, by: "release", uid: nil)
            } else {
                unsealed = hashed.map {
                    Boot.UnsealedState(
                        component: $0.item.component,
                        reason: "the VM was released while its state was hashed"
                    )
                }
            }
        }
        return (try release(entity: entity), sealed, unsealed)
    }

    /// Writes the hashed states as the VM's seals: all in one commit of the sealed store, which
    /// is durable (and counted by the TPM NV counter on the tpm backend) before this returns.
    func commitSeals(
        entity: String,
        hashed: [HashedState],
        by: String,
        uid: UInt32?
    ) async -> (sealed: [Boot.SealedState], unsealed: [Boot.UnsealedState]) {
        // The record keeps only what the policy in force can ask for: the store stays bounded.
        var updated = seals.keeping { vm, component in
            policy.loaded?.expected.entity(named: vm)?.component(named: component)?.writable == true
        }
        var sealed: [Boot.SealedState] = []
        var unsealed: [Boot.UnsealedState] = []
        let now = VMStateSeals.now()
        for state in hashed {
            switch state.digest {
            case .success(let digest):
                updated = updated.sealing(
                    vm: entity,
                    component: state.item.component,
                    VMStateSeals.Seal(
                        digest: digest.description,
                        base: state.item.base.description,
                        path: state.item.path,
                        sealedAt: now,
                        by: by,
                        boot: bootID,
                        uid: uid
                    )
                )
                sealed.append(
                    Boot.SealedState(
                        component: state.item.component,
                        previous: state.item.previous.description,
                        digest: digest.description
                    )
                )
            case .failure(let failure):
                unsealed.append(Boot.UnsealedState(component: state.item.component, reason: failure.reason))
            }
        }
        guard !sealed.isEmpty else { return (sealed, unsealed) }
        guard let token = tokens.current else {
            return (
                [],
                unsealed
                    + sealed.map { Boot.UnsealedState(component: $0.component, reason: "no token to seal it in") }
            )
        }
        do {
            try await token.setDaemonRecords([VMStateSeals.record: updated.encoded])
        } catch {
            logger.error("cannot seal the state of \(entity): \(error)")
            return (
                [],
                unsealed
                    + sealed.map {
                        Boot.UnsealedState(
                            component: $0.component,
                            reason: "the sealed store refused the write: \(error)"
                        )
                    }
            )
        }
        seals = updated
        for seal in sealed {
            logger.notice("sealed \(entity)/\(seal.component) at its \(by): \(seal.previous) -> \(seal.digest)")
        }
        return (sealed, unsealed)
    }

    /// Records that `entity`'s QEMU came up on what was measured for it (in the gate): its
    /// writable state is sealed at its release. Only after a trusted start, and only when no open
    /// of its held files was refused.
    @discardableResult
    func noteStarted(entity: String, refusedOpen: Bool) async -> Bool {
        await gate.serialized { noteStartedInGate(entity: entity, refusedOpen: refusedOpen) }
    }

    private func noteStartedInGate(entity: String, refusedOpen: Bool) -> Bool {
        guard !writableComponents(of: entity).isEmpty else { return false }
        guard !refusedOpen else {
            logger.warning(
                "\(entity) started after an open of one of its measured files was refused: its state will not be sealed at its stop"
            )
            return false
        }
        guard chain?.state(of: entity) == .trusted, !record.started.contains(entity) else { return false }
        do {
            try journal.appendStarted(entity: entity)
        } catch {
            logger.error("cannot record that \(entity) started: \(error); its state will not be sealed at its stop")
            return false
        }
        record.started.insert(entity)
        return true
    }
}
