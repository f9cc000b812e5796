import Foundation
import UkeyCore
import UkeyToken

/// Measurements waiting for the next batch, and whether a drainer takes them.
struct MeasurementQueue {
    /// A measurement waiting for the next batch, with the caller to answer.
    struct Pending {
        let request: Boot.Measure.Work
        let digest: UkeyCore.Digest
        let ticket: MeasurementTicket
    }

    var pending: [Pending] = []
    var draining = false
    /// Batches committed since start (reported by Status, so group commit can be seen working).
    var batches = 0
}

/// Measurements, group-committed: callers queue them, and one drainer takes everything queued
/// as a batch, under the gate: the batch is written ahead to the journal with one fsync, extended
/// in order with one call to the token (one hop to a TPM's thread, its commands back to back),
/// and judged by the chain in the same order. While the TPM works on one batch the next one
/// queues, so ukeyd's own work on a call overlaps the TPM's instead of adding to it.
extension BootService {
    /// The most measurements one batch takes; the rest wait for the next.
    static let maxBatch = 256

    /// Measures and waits for the verdict.
    func measure(
        _ request: Boot.Measure.Work,
        digest: UkeyCore.Digest
    ) async throws(APIError) -> Boot.Measure.Reply {
        try await submit(request, digest: digest, origin: nil).answer().result.get()
    }

    /// Queues a measurement for the next batch and returns at once; the ticket gets the answer
    /// and, for a call from the socket (`origin`), its audit records, queued as the batch answers
    /// it: so the audit log has a connection's calls in the order they were made. What can be
    /// refused now (no token, no policy) is refused here.
    func submit(
        _ request: Boot.Measure.Work,
        digest: UkeyCore.Digest,
        origin: MeasurementTicket.Origin?
    ) throws(APIError) -> MeasurementTicket {
        _ = try tokens.require()
        guard policy.loaded != nil, chain != nil else { throw .noPolicy }
        let ticket = MeasurementTicket(origin: origin)
        queue.pending.append(.init(request: request, digest: digest, ticket: ticket))
        if !queue.draining {
            queue.draining = true
            Task { await drainMeasurements() }
        }
        return ticket
    }

    /// Takes queued measurements in batches until none is left.
    private func drainMeasurements() async {
        while !queue.pending.isEmpty {
            let batch = Array(queue.pending.prefix(Self.maxBatch))
            queue.pending.removeFirst(batch.count)
            queue.batches += 1
            await gate.serialized { await measureBatch(batch) }
        }
        queue.draining = false
    }

    /// One batch, in order: check, write ahead, extend, judge, answer. Every caller is answered.
    private func measureBatch(_ batch: [MeasurementQueue.Pending]) async {
        func fail(_ items: some Sequence<MeasurementQueue.Pending>, _ error: APIError) {
            for item in items { item.ticket.fulfil(.failure(error)) }
        }
        guard let token = tokens.current, let loaded = policy.loaded, chain != nil else {
            return fail(batch, tokens.current == nil ? .notInitialized : .noPolicy)
        }
        if registersSuspect {
            // The TPM failed before: it may have restarted since, its PCRs reset. Measuring on
            // would make registers the event log cannot explain; refuse until the host restarts
            // (or the TPM turns out to have kept them).
            do {
                try await checkPersistentRegisters(token, completingCutExtend: false)
                registersSuspect = false
                logger.notice("the TPM is back and its PCRs still hold this boot's measurements")
            } catch let error as TokenError {
                return fail(batch, APIError(error))
            } catch {
                return fail(batch, .tokenUnavailable(reason: "\(error)"))
            }
        }
        // The policy may have changed since the call was queued: judge it by the one in force.
        // Refusals are answered in their turn below, so answers (and audit records) keep the
        // order the measurements were made in.
        var refusals: [Int: APIError] = [:]
        var accepted: [BootJournal.Measurement] = []
        let recorded = record.count
        for (index, item) in batch.enumerated() {
            let entity = item.request.entity
            let component = item.request.component
            guard entity != Entity.rootName, let known = loaded.expected.entity(named: entity) else {
                refusals[index] = .unknownEntity(entity)
                continue
            }
            guard let expected = known.component(named: component) else {
                refusals[index] = .unknownComponent(entity: entity, component: component)
                continue
            }
            // The journal never drops a measurement to make room: past its limit, refuse.
            guard recorded + accepted.count < journal.limit else {
                refusals[index] = .journalFull(
                    limit: journal.limit,
                    reason:
                        "this host boot has recorded \(journal.limit) measurements, the journal's limit ([boot] max-measurements): nothing more can be measured, and nothing measured is forgotten. Restart the host (or, with soft registers, Boot.Reset) to begin a new boot"
                )
                continue
            }
            if expected.writable,
                item.request.path == nil || item.request.file == nil
                    || item.request.path!.utf8.count > BootJournal.maxPathBytes
            {
                // Its seal at the stop is hashed from the very file measured now: ukeyd must hash
                // it itself, from a path it can keep.
                refusals[index] = .cannotHash(
                    path: item.request.path ?? "",
                    reason:
                        "\(entity)/\(component) is writable (the VM's own state): it is measured only by a path ukeyd hashes itself, of at most \(BootJournal.maxPathBytes) bytes, never by digest"
                )
                continue
            }
            var measurement = BootJournal.Measurement(
                entity: entity,
                component: component,
                digest: item.digest,
                register: known.register
            )
            if expected.writable {
                // Judged against the state sealed at the VM's last stop, and the file kept, to be
                // hashed again and sealed at this run's stop; both journaled with the measurement.
                measurement.sealed = seals.expected(vm: entity, component: expected)
                measurement.path = item.request.path
                measurement.file = item.request.file
            }
            accepted.append(measurement)
        }
        var done = 0
        var failure: APIError?
        if !accepted.isEmpty {
            // Write ahead: the journal holds the measurements before the registers do, so a crash
            // between the two leaves a journal that explains the registers or is ahead of them by
            // extends the next start completes (`checkPersistentRegisters`).
            do {
                try journal.append(accepted)
                let extended = await token.registers.extend(accepted.map { ($0.register, $0.digest) })
                done = extended.done
                if let error = extended.failure {
                    // The token could not (a TPM that went away): those measurements were not taken.
                    // Their callers get an error, so the hypervisor loads nothing; it may measure again.
                    logger.error("the token extended \(done) of \(accepted.count) measurements: \(error)")
                    if error.code == .unavailable && token.registers.registersPersist { registersSuspect = true }
                    failure = APIError(error)
                    do {
                        try journal.appendVoid(count: accepted.count - done)
                    } catch {
                        logger.critical(
                            "cannot void the journal's last \(accepted.count - done) measurements: \(error)"
                        )
                    }
                }
            } catch {
                logger.error("cannot append to the boot journal: \(error)")
                failure = .internalError
            }
        }
        var next = 0
        for (index, item) in batch.enumerated() {
            if let refusal = refusals[index] {
                item.ticket.fulfil(.failure(refusal))
                continue
            }
            let measurement = accepted[next]
            item.ticket.fulfil(
                next < done ? judge(item, measurement, loaded: loaded) : .failure(failure ?? .internalError)
            )
            next += 1
        }
    }

    /// The chain's verdict on one extended measurement, and its effect carried out: the event the
    /// chain names goes to the event log. The batch extended the register before the chain was
    /// asked (write-ahead, in one hop to the token), so the chain's extend must be that one; if
    /// it is not, the answer is an error rather than an event log that does not explain a register.
    private func judge(
        _ item: MeasurementQueue.Pending,
        _ measurement: BootJournal.Measurement,
        loaded: LoadedPolicy
    ) -> Result<Boot.Measure.Reply, APIError> {
        let request = item.request
        let outcome: MeasurementOutcome
        do {
            guard
                let measured = try judge(
                    entity: request.entity,
                    component: request.component,
                    digest: item.digest,
                    sealed: measurement.sealed
                )
            else {
                return .failure(.noPolicy)
            }
            outcome = measured
        } catch {
            return .failure(.unknownEntity(request.entity))
        }
        record.measurements.append(measurement)
        // A writable component measured again is a new start: whatever came up before it (and
        // was never released) says nothing about this one. The journal replays it so.
        if measurement.path != nil { record.started.remove(request.entity) }
        guard case .extend(let register, let digest, let eventData)? = outcome.effects.first,
            register == measurement.register, digest == measurement.digest
        else {
            logger.critical(
                "the chain's extend for \(request.entity)/\(request.component) is not the one the batch made"
            )
            return .failure(.internalError)
        }
        let eventIndex = eventLog.appendMeasurement(register: register, digest: digest, description: eventData)
        let mode = policy.mode
        var load = outcome.mayLoad(in: mode)
        var reason = outcome.reason?.rawValue
        if load, mode == .enforce, loaded.expected.entity(named: request.entity)?.kind == .userVM {
            if let refusal = userVMRefusal(entity: request.entity, authority: request.startAuthority, loaded: loaded) {
                load = false
                reason = refusal
            }
        }
        if !outcome.match && reason == nil { reason = "digest-mismatch" }
        logger.info(
            "measure \(request.entity)/\(request.component) \(item.digest): \(outcome.state.rawValue) match=\(outcome.match) load=\(load)"
        )
        return .success(
            Boot.Measure.Reply(
                verdict: outcome.state.rawValue,
                match: outcome.match,
                load: load,
                reason: reason,
                register: outcome.register,
                eventIndex: eventIndex,
                digest: item.digest.description,
                cached: request.cached
            )
        )
    }

    /// Starting a user VM needs a logged-in user (by a start ticket for it, or the caller's own
    /// session) whose policy entry names that VM.
    private func userVMRefusal(entity: String, authority: StartTickets.Authority?, loaded: LoadedPolicy) -> String? {
        switch authority ?? .refused("authentication-required") {
        case .refused(let reason): return reason
        case .user(let name):
            guard let user = loaded.user(name), user.vms.contains(where: { $0.name == entity }) else {
                return "user-not-allowed"
            }
            return nil
        }
    }
}
