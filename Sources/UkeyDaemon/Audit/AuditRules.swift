import UkeyAudit
import UkeyVarlink

/// What each call leaves in the audit log, built from the call, the caller and
/// the reply, so every service is recorded in one place and none can forget to. Secrets (PINs,
/// the SO PIN) are never copied from the parameters; reads (GetInfo, Chain, Quote, Status, the
/// audit log itself) leave nothing.
enum AuditRules {
    /// Queues the call's records (if it leaves any): the last one's ticket, which the reply
    /// waits on, and the log it is in.
    static func record(
        _ call: VarlinkCall,
        caller: Caller,
        reply: VarlinkReply,
        holder: AuditHolder
    ) -> (AuditLog.Ticket?, AuditLog?) {
        let entries = entries(for: call, caller: caller, reply: reply, holder: holder)
        guard !entries.isEmpty, let log = holder.log else { return (nil, nil) }
        var ticket: AuditLog.Ticket?
        for entry in entries { ticket = log.enqueue(entry) }
        return (ticket, log)
    }

    /// With `probe`, only whether the call leaves records: nothing is counted (the call may be
    /// answered on the usual path next, and counted there).
    static func entries(
        for call: VarlinkCall,
        caller: Caller,
        reply: VarlinkReply,
        holder: AuditHolder,
        probe: Bool = false
    ) -> [AuditEntry] {
        let actor = AuditActor(uid: caller.uid, pid: caller.pid, role: caller.strongestRole)
        let p = call.parameters
        let r = reply.parameters
        func entry(_ type: String, _ subject: [String: AuditValue]) -> [AuditEntry] {
            var subject = subject
            if let error = reply.error {
                subject["error"] = .string(error)
                if let reason = r["reason"]?.stringValue { subject["reason"] = .string(reason) }
            }
            return [AuditEntry(type: type, actor: actor, subject: subject)]
        }
        if reply.error == VarlinkError.permissionDenied().name {
            if probe { return [AuditEntry(type: "permission-denied", actor: actor)] }
            // The first refusal per peer and method in an interval now; the rest as one count.
            let (recordNow, ended) = holder.denials.admit(uid: caller.uid, method: call.method, actor: actor)
            let current =
                recordNow
                ? [AuditEntry(type: "permission-denied", actor: actor, subject: ["method": .string(call.method)])] : []
            return (ended.map { [$0] } ?? []) + current
        }
        switch call.method {
        case "io.ukey.Boot.Measure":
            var subject = strings(p, "entity", "component", "path", "hold")
            subject.merge(strings(r, "digest", "verdict", "reason")) { a, _ in a }
            if subject["digest"] == nil, let digest = p["digest"]?.stringValue { subject["digest"] = .string(digest) }
            if let load = r["load"]?.boolValue { subject["load"] = .bool(load) }
            if r["cached"]?.boolValue == true { subject["cached"] = .bool(true) }
            return entry("measure", subject)
        case "io.ukey.Boot.Reset":
            return entry("reset", strings(r, "bootId"))
        case "io.ukey.Boot.Release":
            var subject = strings(p, "entity")
            subject.merge(strings(r, "state")) { a, _ in a }
            if let released = r["released"]?.arrayValue {
                subject["released"] = .string(released.compactMap(\.stringValue).joined(separator: ","))
            }
            // Each seal of the VM's state is a record of its own, with what it held before.
            return entry("release", subject) + states(r, entity: p["entity"]?.stringValue, by: "release", actor: actor)
        case "io.ukey.Boot.AcceptState":
            guard reply.error == nil else {
                return entry("vm-state-accepted", strings(p, "entity", "component", "path"))
            }
            return states(r, entity: p["entity"]?.stringValue, by: "accept", actor: actor)
        case "io.ukey.Auth.Login":
            var subject = strings(p, "user", "forVm")
            subject["outcome"] = .string(loginOutcome(reply))
            if let left = r["retriesLeft"]?.intValue { subject["retriesLeft"] = .int(left) }
            return [AuditEntry(type: "login", actor: actor, subject: subject)]
        case "io.ukey.Auth.Logout":
            return entry("logout", [:])
        case "io.ukey.Runtime.GuardEvent":
            var subject = strings(p, "vm", "event")
            subject["mounts"] = .string(
                (p["mounts"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ",")
            )
            if let gaps = p["gaps"]?.arrayValue, !gaps.isEmpty {
                subject["gaps"] = .string(gaps.compactMap(\.stringValue).joined(separator: ","))
            }
            if let vm = caller.guest { subject["vm"] = .string(vm) }
            return entry("guard", subject)
        case "io.ukey.Runtime.CheckExec":
            return exec(
                p,
                reply.error == nil ? r : nil,
                actor: actor,
                caller: caller,
                holder: holder,
                error: reply.error,
                probe: probe
            )
        case "io.ukey.Runtime.CheckExecBatch":
            guard reply.error == nil, let items = p["items"]?.arrayValue, let results = r["results"]?.arrayValue else {
                return entry("exec-batch", ["items": .int(p["items"]?.arrayValue?.count ?? 0)])
            }
            return zip(items, results).flatMap { item, result in
                exec(
                    item.objectValue ?? [:],
                    result.objectValue,
                    actor: actor,
                    caller: caller,
                    holder: holder,
                    error: nil,
                    probe: probe
                )
            }
        case "io.ukey.Token.Sign":
            return entry("sign", strings(p, "key"))
        case "io.ukey.Admin.Initialize":
            return entry("initialize", [:])
        case "io.ukey.Admin.AddUser":
            var subject = strings(p, "user")
            if let roles = p["roles"]?.arrayValue {
                subject["roles"] = .string(roles.compactMap(\.stringValue).joined(separator: ","))
            }
            return entry("user-add", subject)
        case "io.ukey.Admin.IssueCertificate":
            var subject = strings(p, "user")
            subject["csr"] = .bool(p["csr"]?.stringValue != nil)
            return entry("certificate-issue", subject)
        case "io.ukey.Admin.UnblockPin":
            return entry("unblock", strings(p, "user"))
        case "io.ukey.Admin.SetMode":
            return entry("mode", strings(p, "mode"))
        case "io.ukey.Admin.LoadPolicy":
            var subject: [String: AuditValue] = ["outcome": reply.error == nil ? "loaded" : "rejected"]
            if let version = r["version"]?.intValue { subject["version"] = .int(version) }
            subject["source"] = p["policy"] == nil ? "policy-dir" : "call"
            return entry("policy-load", subject)
        default:
            return []
        }
    }

    private static func exec(
        _ p: [String: JSONValue],
        _ r: [String: JSONValue]?,
        actor: AuditActor,
        caller: Caller,
        holder: AuditHolder,
        error: String?,
        probe: Bool
    ) -> [AuditEntry] {
        // Decided before the record is built: an allowed exec that is not recorded (the default)
        // is the exec path's common case and should cost nothing here.
        var sampledAllow = false
        if error == nil, let r {
            let decision = r["decision"]?.stringValue ?? "deny"
            let wouldDeny = r["reason"]?.stringValue?.hasPrefix("audit-mode") == true
            guard decision == "deny" || wouldDeny || holder.recordsAllowedExec() else { return [] }
            sampledAllow = decision != "deny" && !wouldDeny
        }
        var subject = strings(p, "vm", "path", "digest")
        if let error {
            subject["error"] = .string(error)
        } else if let r {
            subject.merge(strings(r, "decision", "reason", "rule")) { a, _ in a }
        }
        let entry = AuditEntry(type: "exec", actor: actor, subject: subject)
        if sampledAllow || probe { return [entry] }
        // A denial (or an exec that could not be checked): counted per denial, and bounded per
        // guest channel; a host caller's distinct denials are each recorded.
        return holder.execDenials.admit(
            entry,
            channel: caller.guest.map(ExecDenialAggregator.Channel.guest) ?? .host(uid: caller.uid)
        )
    }

    /// One record per writable component sealed (`vm-state-sealed`, `vm-state-accepted`) or
    /// left unsealed (`vm-state-unsealed`) by a release or an acceptance.
    private static func states(_ r: [String: JSONValue], entity: String?, by: String, actor: AuditActor) -> [AuditEntry]
    {
        var entries: [AuditEntry] = []
        for sealed in r["sealed"]?.arrayValue ?? [] {
            var subject = strings(sealed.objectValue ?? [:], "component", "previous", "digest")
            subject["entity"] = entity.map(AuditValue.string)
            entries.append(
                AuditEntry(
                    type: by == "accept" ? "vm-state-accepted" : "vm-state-sealed",
                    actor: actor,
                    subject: subject
                )
            )
        }
        for unsealed in r["unsealed"]?.arrayValue ?? [] {
            var subject = strings(unsealed.objectValue ?? [:], "component", "reason")
            subject["entity"] = entity.map(AuditValue.string)
            entries.append(AuditEntry(type: "vm-state-unsealed", actor: actor, subject: subject))
        }
        return entries
    }

    private static func loginOutcome(_ reply: VarlinkReply) -> String {
        switch reply.error {
        case nil: "success"
        case "io.ukey.Auth.BadPin"?: "bad-pin"
        case "io.ukey.Auth.PinLocked"?: "locked"
        case "io.ukey.Auth.UnknownUser"?: "unknown-user"
        case let other?: other
        }
    }

    private static func strings(_ values: [String: JSONValue], _ keys: String...) -> [String: AuditValue] {
        var out: [String: AuditValue] = [:]
        for key in keys { if let value = values[key]?.stringValue { out[key] = .string(value) } }
        return out
    }
}

extension Caller {
    /// For the audit record: the strongest role the caller holds.
    var strongestRole: String {
        if guest != nil { return "guest" }
        if roles.contains(.admin) { return "admin" }
        if roles.contains(.hypervisor) { return "hypervisor" }
        return "user"
    }
}
