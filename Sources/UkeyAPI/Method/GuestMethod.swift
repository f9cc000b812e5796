import UkeyCodec

/// A method a guest may call on its VM's guard channel. The VM is the channel's: a call that
/// names another is refused, and one that names none is about the channel's. Bound before the
/// call is read, so the request the daemon reads already names the channel's VM.
public protocol GuestMethod: APIMethod {
    /// The call's parameters bound to `vm`; nil when they name another VM.
    static func bind(_ parameters: [String: JSONValue], to vm: String) -> [String: JSONValue]?
}

extension GuestMethod {
    public static func bind(_ parameters: [String: JSONValue], to vm: String) -> [String: JSONValue]? {
        GuestBinding.bind(parameters, to: vm)
    }
}

/// The one rule for a guest's `vm` field.
public enum GuestBinding {
    /// `fields` with its `vm` set to `vm`; nil when it names another.
    public static func bind(_ fields: [String: JSONValue], to vm: String) -> [String: JSONValue]? {
        if let claimed = fields["vm"], claimed != .string(vm) { return nil }
        var bound = fields
        bound["vm"] = .string(vm)
        return bound
    }
}
