import UkeyAPI
import UkeyCodec
import UkeyAudit

/// Puts a call's records in the audit log: what the method says a call leaves (`APIMethod.audit`),
/// with who called, within the daemon's limits. An allowed exec is recorded only when the
/// settings sample it; an exec denial is counted per guest channel (`ExecDenialAggregator`); a
/// call refused before any method read it (no role for it, parameters it cannot read) is
/// recorded once per peer and method an interval, the rest counted (`DenialAggregator`).
enum CallRecorder {
    /// Queues the records: the last one's ticket, which the reply waits on, and the log it is in.
    static func record(_ entries: [AuditEntry], holder: AuditHolder) -> (AuditLog.Ticket?, AuditLog?) {
        guard !entries.isEmpty, let log = holder.log else { return (nil, nil) }
        var ticket: AuditLog.Ticket?
        for entry in entries { ticket = log.enqueue(entry) }
        return (ticket, log)
    }

    /// The entries a method's records become for this caller. With `probe`, only whether there
    /// would be any: nothing is sampled or counted (the call may be answered on the usual path
    /// next, and counted there).
    static func entries(
        _ records: [AuditRecord],
        caller: Caller,
        holder: AuditHolder,
        probe: Bool = false
    ) -> [AuditEntry] {
        let actor = caller.auditActor
        var entries: [AuditEntry] = []
        for record in records {
            let entry = { AuditEntry(type: record.type, actor: actor, subject: record.subject.auditSubject) }
            switch record.kind {
            case .plain:
                entries.append(entry())
            case .exec(let allowed):
                if probe {
                    // Whether it could leave a record: an allowed exec only where allows are sampled.
                    if !allowed || holder.mayRecordAllowedExec { entries.append(entry()) }
                } else if allowed {
                    // Decided before anything else: an allowed exec that is not recorded (the
                    // default) is the exec path's common case and should cost nothing here.
                    if holder.recordsAllowedExec() { entries.append(entry()) }
                } else {
                    // A denial (or an exec that could not be checked): counted per denial, and
                    // bounded per guest channel; a host caller's distinct denials are each recorded.
                    entries += holder.execDenials.admit(
                        entry(),
                        channel: caller.guest.map(ExecDenialAggregator.Channel.guest) ?? .host(uid: caller.uid)
                    )
                }
            }
        }
        return entries
    }

    /// A call refused before its method saw it: `permission-denied`, or `invalid-call` for
    /// parameters the method cannot read. The first per peer, method and kind in an interval
    /// now; the rest as one count.
    static func refusal(
        _ type: String,
        method: String,
        detail: [String: AuditValue],
        caller: Caller,
        holder: AuditHolder
    )
        -> [AuditEntry]
    {
        let actor = caller.auditActor
        let (recordNow, ended) = holder.denials.admit(uid: caller.uid, method: method, type: type, actor: actor)
        var subject = detail
        subject["method"] = .string(method)
        let current = recordNow ? [AuditEntry(type: type, actor: actor, subject: subject)] : []
        return (ended.map { [$0] } ?? []) + current
    }
}

extension Caller {
    var auditActor: AuditActor { AuditActor(uid: uid, pid: pid, role: strongestRole) }

    /// For the audit record: the strongest role the caller holds.
    var strongestRole: String {
        if guest != nil { return "guest" }
        if roles.contains(.admin) { return "admin" }
        if roles.contains(.hypervisor) { return "hypervisor" }
        return "user"
    }
}

extension [String: JSONValue] {
    /// A record's subject as the log keeps it: flat strings, integers and booleans.
    var auditSubject: [String: AuditValue] {
        var subject: [String: AuditValue] = [:]
        for (key, value) in self {
            switch value {
            case .string(let string): subject[key] = .string(string)
            case .int(let int): subject[key] = .int(int)
            case .bool(let bool): subject[key] = .bool(bool)
            default: continue
            }
        }
        return subject
    }
}
