import Foundation
import UkeyCore
import UkeyToken
import UkeyVarlink

/// Measurements, group-committed: callers queue them, and one drainer takes everything queued
/// as a batch, under the gate: the batch is written ahead to the journal with one fsync, extended
/// in order with one call to the token (one hop to a TPM's thread, its commands back to back),
/// and judged by the chain in the same order. While the TPM works on one batch the next one
/// queues, so ukeyd's own work on a call overlaps the TPM's instead of adding to it.
extension DaemonCore {
    /// A measurement waiting for the next batch, with the caller to answer.
    struct PendingMeasurement {
        let entity: String
        let component: String
        let digest: UkeyCore.Digest
        let session: String?
        let reply: MeasurementTicket
    }

    /// The most measurements one batch takes; the rest wait for the next.
    static let maxBatch = 256

    func measure(entity: String, component: String, digest: UkeyCore.Digest, session: String?) async throws(VarlinkError) -> [String: JSONValue] {
        try await submitMeasurement(entity: entity, component: component, digest: digest, session: session, origin: nil).answer().result.get()
    }

    /// Queues a measurement for the next batch and returns at once; the ticket gets the answer
    /// and, for a call from the socket (`origin`), its audit records, queued as the batch answers
    /// it: so the audit log has a connection's calls in the order they were made. What can be
    /// refused now (no token, no policy) is refused here.
    func submitMeasurement(entity: String, component: String, digest: UkeyCore.Digest, session: String?, origin: MeasurementTicket.Origin?) throws(VarlinkError) -> MeasurementTicket {
        _ = try requireToken()
        guard loaded != nil, chain != nil else { throw DaemonErrors.noPolicy() }
        let ticket = MeasurementTicket(origin: origin)
        pendingMeasurements.append(PendingMeasurement(entity: entity, component: component, digest: digest, session: session, reply: ticket))
        if !drainingMeasurements {
            drainingMeasurements = true
            Task { await drainMeasurements() }
        }
        return ticket
    }

    /// Takes queued measurements in batches until none is left.
    func drainMeasurements() async {
        while !pendingMeasurements.isEmpty {
            let batch = Array(pendingMeasurements.prefix(Self.maxBatch))
            pendingMeasurements.removeFirst(batch.count)
            measurementBatches += 1
            await serialized { await measureBatch(batch) }
        }
        drainingMeasurements = false
    }

    /// One batch, in order: check, write ahead, extend, judge, answer. Every caller is answered.
    private func measureBatch(_ batch: [PendingMeasurement]) async {
        func fail(_ items: some Sequence<PendingMeasurement>, _ error: VarlinkError) {
            for item in items { answer(item, .failure(error)) }
        }
        guard let token, let loaded, chain != nil else {
            return fail(batch, token == nil ? DaemonErrors.notInitialized() : DaemonErrors.noPolicy())
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
                return fail(batch, DaemonErrors.from(error))
            } catch {
                return fail(batch, VarlinkError("io.ukey.Token.Unavailable", ["reason": .string("\(error)")]))
            }
        }
        // The policy may have changed since the call was queued: judge it by the one in force.
        // Refusals are answered in their turn below, so answers (and audit records) keep the
        // order the measurements were made in.
        var refusals: [Int: VarlinkError] = [:]
        var accepted: [(item: PendingMeasurement, measurement: BootJournal.Measurement)] = []
        for (index, item) in batch.enumerated() {
            guard item.entity != Entity.rootName, let known = loaded.expected.entity(named: item.entity) else {
                refusals[index] = VarlinkError("io.ukey.Boot.UnknownEntity", ["entity": .string(item.entity)])
                continue
            }
            guard known.component(named: item.component) != nil else {
                refusals[index] = VarlinkError("io.ukey.Boot.UnknownComponent", ["entity": .string(item.entity), "component": .string(item.component)])
                continue
            }
            // The journal never drops a measurement to make room: past its limit, refuse.
            guard earlier.count + measurements.count + accepted.count < journal.limit else {
                refusals[index] = VarlinkError("io.ukey.Boot.JournalFull", [
                    "limit": .int(journal.limit),
                    "reason": .string("this host boot has recorded \(journal.limit) measurements, the journal's limit ([boot] max-measurements): nothing more can be measured, and nothing measured is forgotten. Restart the host (or, with soft registers, Boot.Reset) to begin a new boot"),
                ])
                continue
            }
            accepted.append((item, BootJournal.Measurement(entity: item.entity, component: item.component, digest: item.digest, register: known.register)))
        }
        var done = 0
        var failure: VarlinkError?
        if !accepted.isEmpty {
            // Write ahead: the journal holds the measurements before the registers do, so a crash
            // between the two leaves a journal that explains the registers or is ahead of them by
            // extends the next start completes (`checkPersistentRegisters`).
            do {
                try journal.append(accepted.map(\.measurement))
                let extended = await token.extend(accepted.map { ($0.measurement.register, $0.measurement.digest) })
                done = extended.done
                if let error = extended.failure {
                    // The token could not (a TPM that went away): those measurements were not taken.
                    // Their callers get an error, so the hypervisor loads nothing; it may measure again.
                    logger.error("the token extended \(done) of \(accepted.count) measurements: \(error)")
                    if error.code == .unavailable && token.registersPersist { registersSuspect = true }
                    failure = DaemonErrors.from(error)
                    do {
                        try journal.appendVoid(count: accepted.count - done)
                    } catch {
                        logger.critical("cannot void the journal's last \(accepted.count - done) measurements: \(error)")
                    }
                }
            } catch {
                logger.error("cannot append to the boot journal: \(error)")
                failure = DaemonErrors.internalError()
            }
        }
        var next = 0
        for (index, item) in batch.enumerated() {
            if let refusal = refusals[index] {
                answer(item, .failure(refusal))
                continue
            }
            let measurement = accepted[next].measurement
            answer(item, next < done ? judge(item, measurement) : .failure(failure ?? DaemonErrors.internalError()))
            next += 1
        }
    }

    /// Answers one measurement, queuing its audit records first when it came over the socket.
    private func answer(_ item: PendingMeasurement, _ result: Result<[String: JSONValue], VarlinkError>) {
        guard let origin = item.reply.origin else {
            return item.reply.fulfil(.init(result: result, audit: nil, log: nil))
        }
        let reply: VarlinkReply = switch result {
        case .success(let parameters): VarlinkReply(parameters: parameters)
        case .failure(let error): .failure(error)
        }
        let (ticket, log) = AuditRules.record(origin.call, caller: origin.caller, reply: reply, holder: audit)
        item.reply.fulfil(.init(result: result, audit: ticket, log: log))
    }

    /// The chain's verdict on one extended measurement, and its effect carried out: the event the
    /// chain names goes to the event log. The batch extended the register before the chain was
    /// asked (write-ahead, in one hop to the token), so the chain's extend must be that one; if
    /// it is not, the answer is an error rather than an event log that does not explain a register.
    private func judge(_ item: PendingMeasurement, _ measurement: BootJournal.Measurement) -> Result<[String: JSONValue], VarlinkError> {
        guard let loaded else { return .failure(DaemonErrors.noPolicy()) }
        let outcome: MeasurementOutcome
        do {
            // Mutated in place (optional chaining), not copied: the chain's state is large.
            guard let measured = try chain?.measure(entity: item.entity, component: item.component, digest: item.digest) else {
                return .failure(DaemonErrors.noPolicy())
            }
            outcome = measured
        } catch {
            return .failure(VarlinkError("io.ukey.Boot.UnknownEntity", ["entity": .string(item.entity)]))
        }
        measurements.append(measurement)
        guard case .extend(let register, let digest, let eventData)? = outcome.effects.first,
            register == measurement.register, digest == measurement.digest
        else {
            logger.critical("the chain's extend for \(item.entity)/\(item.component) is not the one the batch made")
            return .failure(DaemonErrors.internalError())
        }
        let eventIndex = eventLog.appendMeasurement(register: register, digest: digest, description: eventData)
        var load = outcome.mayLoad(in: mode)
        var reason = outcome.reason?.rawValue
        if load, mode == .enforce, loaded.expected.entity(named: item.entity)?.kind == .userVM {
            if let refusal = userVMRefusal(entity: item.entity, session: item.session) {
                load = false
                reason = refusal
            }
        }
        if !outcome.match && reason == nil { reason = "digest-mismatch" }
        logger.info("measure \(item.entity)/\(item.component) \(item.digest): \(outcome.state.rawValue) match=\(outcome.match) load=\(load)")
        return .success([
            "verdict": .string(outcome.state.rawValue),
            "match": .bool(outcome.match),
            "load": .bool(load),
            "reason": reason.map(JSONValue.string) ?? .null,
            "register": .int(outcome.register),
            "eventIndex": .int(eventIndex),
            "digest": .string(item.digest.description),
        ])
    }
}
