import UkeyVarlink

// io.ukey.Token on the wire (the IDL: `VarlinkInterface.token`).

extension Token.Info.Reply: WireReply {
    var wire: [String: JSONValue] {
        [
            "backend": .string(backend), "serial": .string(serial),
            "algorithms": .array(algorithms.map(JSONValue.string)), "roles": .object(roles.mapValues(JSONValue.string)),
        ]
    }
}

extension Token.Certificate.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        name = try p.string("name", maxLength: 64)
    }
}

extension Token.Certificate.Reply: WireReply {
    var wire: [String: JSONValue] { ["pem": .string(pem)] }
}

extension Token.Random.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        bytes = try p.int("bytes")
    }
}

extension Token.Random.Reply: WireReply {
    var wire: [String: JSONValue] { ["data": .string(data.base64)] }
}

extension Token.Sign.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        key = try p.string("key", maxLength: 64)
        digest = try p.base64("digest", maxLength: 64)
        session = try p.optionalString("session", maxLength: 256)
    }
}

extension Token.Sign.Reply: WireReply {
    var wire: [String: JSONValue] {
        ["signature": .string(signature.base64), "algorithm": .string(algorithm), "context": .string(context.base64)]
    }
}
