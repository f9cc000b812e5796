import Foundation
import UkeyVarlink

// io.ukey.Auth on the wire (the IDL: `VarlinkInterface.auth`).

extension Auth.Login.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        user = try p.string("user", maxLength: 64)
        pin = try p.string("pin", maxLength: 64)
    }
}

extension Auth.Login.Reply: WireReply {
    var wire: [String: JSONValue] {
        [
            "session": .string(session), "expires": .string(ISO8601DateFormatter().string(from: expires)),
            "roles": .array(roles.map(JSONValue.string)), "certificate": .string(certificate),
        ]
    }
}

extension Auth.Logout.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        session = try p.string("session", maxLength: 256)
    }
}
