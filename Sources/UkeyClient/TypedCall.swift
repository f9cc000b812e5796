import UkeyAPI
import UkeyVarlink

extension VarlinkConnection {
    /// Calls a ukey method with its typed request and reads its typed reply. An error reply
    /// throws `APIError` (the same case ukeyd threw); a transport failure throws `Failure`; a
    /// reply that is not the method's shape is `Failure.malformed`, naming the field.
    public func call<M: APIMethod>(_ method: M.Type, _ request: M.Request) throws -> M.Reply {
        let parameters: [String: JSONValue]
        do {
            parameters = try call(M.name, request.wire)
        } catch let error as VarlinkError {
            throw APIError(name: error.name, parameters: error.parameters)
        }
        do {
            return try M.Reply(wire: parameters)
        } catch {
            throw Failure.malformed("\(M.name): \(error)")
        }
    }

    /// Calls a ukey method that takes no parameters.
    public func call<M: APIMethod>(_ method: M.Type) throws -> M.Reply where M.Request == Empty {
        try call(method, Empty())
    }
}
