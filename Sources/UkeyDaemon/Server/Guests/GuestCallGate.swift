import UkeyAPI
import UkeyVarlink

/// What a guest may ask on its guard channel: the methods the API marks as a guest's
/// (`GuestMethod`: whether programs may run in its own VM, and that its guard started or
/// stops), each bound to the channel's VM by the method's own rule; nothing else. Pure, so every
/// case is testable without a guest.
public enum GuestCallGate {
    static let methods: [String: any GuestMethod.Type] = Dictionary(
        uniqueKeysWithValues: APIInterface.allMethods.compactMap { $0 as? any GuestMethod.Type }.map { ($0.name, $0) }
    )

    public enum Verdict: Sendable, Equatable {
        /// The call to dispatch, bound to the channel's VM.
        case forward(VarlinkCall)
        case refuse(reason: String)
    }

    public static func admit(_ call: VarlinkCall, vm: String) -> Verdict {
        guard let method = methods[call.method] else {
            let names = methods.keys.sorted().map { $0.split(separator: ".").last.map(String.init) ?? $0 }
            return .refuse(reason: "a guest may call only \(names.joined(separator: ", ")), not \(call.method)")
        }
        guard let bound = method.bind(call.parameters, to: vm) else {
            return .refuse(reason: "a guest of \(vm) asked about another VM")
        }
        var forwarded = call
        forwarded.parameters = bound
        return .forward(forwarded)
    }
}
