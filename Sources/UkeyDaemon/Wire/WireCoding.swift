import UkeyVarlink

/// A typed request read from a call's parameters (the conformances live in `Wire/`, one file per
/// interface, next to nothing else: the services never see JSON).
protocol WireRequest: Sendable {
    init(wire: Parameters) throws(ServiceError)
}

/// A typed reply written as a reply's parameters.
protocol WireReply: Sendable {
    var wire: [String: JSONValue] { get }
}

/// The request of a method that takes no parameters.
struct NoParameters: WireRequest {
    init() {}
    init(wire: Parameters) {}
}

/// The reply of a method that answers nothing but success.
struct EmptyReply: WireReply {
    var wire: [String: JSONValue] { [:] }
}

extension Optional where Wrapped == String {
    /// A `?string` field: null when absent.
    var wire: JSONValue { map(JSONValue.string) ?? .null }
}

extension Optional where Wrapped == Int {
    /// A `?int` field: null when absent.
    var wire: JSONValue { map(JSONValue.int) ?? .null }
}
