import Foundation
import UkeyVarlink

// io.ukey.Auth on the wire (the IDL: `VarlinkInterface.auth`).

extension Auth.Login.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        user = try p.string("user", maxLength: 64)
        pin = try p.string("pin", maxLength: 64)
        forVm = try p.optionalString("forVm", maxLength: 64)
    }
}

extension Auth.Login.Reply: WireReply {
    var wire: [String: JSONValue] {
        var wire: [String: JSONValue] = [
            "expires": .string(ISO8601DateFormatter().string(from: expires)),
            "roles": .array(roles.map(JSONValue.string)), "certificate": .string(certificate),
        ]
        if let session { wire["session"] = .string(session) }
        if let ticket { wire["ticket"] = .string(ticket) }
        return wire
    }
}

extension Auth.Logout.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        session = try p.string("session", maxLength: 256)
    }
}
