import UkeyVarlink

/// What a guest may ask on its guard channel: whether programs may run in its own VM, and say
/// that its guard started or stops; nothing else. The VM is the channel's; a call that names
/// another is refused, and one that names none is about the channel's. Pure, so every case is
/// testable without a guest.
public enum GuestCallGate {
    public static let allowedMethods: Set<String> = [
        "io.ukey.Runtime.CheckExec", "io.ukey.Runtime.CheckExecBatch", "io.ukey.Runtime.GuardEvent",
    ]

    public enum Verdict: Sendable, Equatable {
        /// The call to dispatch, with every `vm` set to the channel's.
        case forward(VarlinkCall)
        case refuse(reason: String)
    }

    public static func admit(_ call: VarlinkCall, vm: String) -> Verdict {
        guard allowedMethods.contains(call.method) else {
            return .refuse(reason: "a guest may call only CheckExec, CheckExecBatch and GuardEvent, not \(call.method)")
        }
        var parameters = call.parameters
        if let claimed = parameters["vm"], claimed != .string(vm) {
            return .refuse(reason: "a guest of \(vm) asked about another VM")
        }
        parameters["vm"] = .string(vm)
        if call.method == "io.ukey.Runtime.CheckExecBatch", case .array(let items)? = parameters["items"] {
            var bound: [JSONValue] = []
            bound.reserveCapacity(items.count)
            for item in items {
                guard case .object(var fields) = item else {
                    bound.append(item)  // the wire layer refuses it as an invalid item
                    continue
                }
                if let claimed = fields["vm"], claimed != .string(vm) {
                    return .refuse(reason: "a guest of \(vm) asked about another VM")
                }
                fields["vm"] = .string(vm)
                bound.append(.object(fields))
            }
            parameters["items"] = .array(bound)
        }
        var forwarded = call
        forwarded.parameters = parameters
        return .forward(forwarded)
    }
}
