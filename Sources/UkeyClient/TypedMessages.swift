import UkeyAPI
import UkeyVarlink

extension VarlinkCall {
    /// A call of a ukey method with its typed request: for a client that sends and reads on its
    /// own (a `more` call held open, a one-way call, a port shared by calls).
    public init<M: APIMethod>(_ method: M.Type, _ request: M.Request, oneway: Bool = false, more: Bool = false) {
        self.init(method: M.name, parameters: request.wire, oneway: oneway, more: more)
    }
}

extension VarlinkReply {
    /// The reply read as `method`'s: an error reply throws `APIError`, a reply of another shape
    /// `APIError.invalidParameter` naming the field (ukeyd would never send one).
    public func decoded<M: APIMethod>(as method: M.Type) throws(APIError) -> M.Reply {
        if let error { throw APIError(name: error, parameters: parameters) }
        return try M.Reply(wire: parameters)
    }
}
