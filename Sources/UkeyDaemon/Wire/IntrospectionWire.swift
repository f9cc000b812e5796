import UkeyVarlink

// org.varlink.service on the wire (the IDL: `VarlinkInterface.service`).

extension VarlinkService.GetInfo.Reply: WireReply {
    /// Never changes: encoded once (GetInfo is the protocol's floor in the benchmarks).
    static let encoded: [String: JSONValue] = {
        let reply = VarlinkService.GetInfo.Reply()
        return [
            "vendor": .string(reply.vendor), "product": .string(reply.product), "version": .string(reply.version),
            "url": .string(reply.url), "interfaces": .array(reply.interfaces.map(JSONValue.string)),
        ]
    }()

    var wire: [String: JSONValue] { Self.encoded }
}

extension VarlinkService.GetInterfaceDescription.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        interface = try p.string("interface", maxLength: 256)
    }
}

extension VarlinkService.GetInterfaceDescription.Reply: WireReply {
    var wire: [String: JSONValue] { ["description": .string(description)] }
}
