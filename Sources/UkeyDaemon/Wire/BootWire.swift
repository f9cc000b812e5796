import UkeyCore
import UkeyVarlink

// io.ukey.Boot on the wire (the IDL: `VarlinkInterface.boot`).

extension Boot.Measure.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        entity = try p.string("entity", maxLength: 64)
        component = try p.string("component", maxLength: 64)
        session = try p.optionalString("session", maxLength: 256)
        digest = try p.digest("digest")
        path = try p.optionalString("path")
        hold = try p.optionalString("hold", maxLength: 64)
    }
}

extension Boot.Started.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        entity = try p.string("entity", maxLength: 64)
    }
}

extension Boot.Started.Reply: WireReply {
    var wire: [String: JSONValue] { ["held": .int(held)] }
}

extension Boot.Measure.Reply: WireReply {
    var wire: [String: JSONValue] {
        [
            "verdict": .string(verdict), "match": .bool(match), "load": .bool(load), "reason": reason.wire,
            "register": .int(register), "eventIndex": .int(eventIndex), "digest": .string(digest.description),
        ]
    }
}

extension Boot.Chain.Reply: WireReply {
    var wire: [String: JSONValue] {
        ["bootId": .string(bootID), "mode": .string(mode), "entities": .array(entities.map { .object($0.wire) })]
    }
}

extension Boot.Chain.Entity {
    var wire: [String: JSONValue] {
        [
            "name": .string(name), "parent": .string(parent), "kind": .string(kind), "state": .string(state),
            "reason": reason.wire, "register": .int(register),
            "measured": .object(measured.mapValues { .string($0.description) }),
            "components": .array(components.map(JSONValue.string)),
        ]
    }
}

extension Boot.Quote.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        nonce = try p.base64("nonce", maxLength: 64)
        registers = try p.optionalInts("registers")
        if let name = try p.optionalString("bank", maxLength: 16) {
            guard let algorithm = HashAlgorithm(rawValue: name) else { throw .invalidParameter("bank") }
            bank = algorithm
        } else {
            bank = .sha256
        }
    }
}

extension Boot.Quote.Reply: WireReply {
    var wire: [String: JSONValue] {
        [
            "quote": .string(quote.base64), "signature": .string(signature.base64), "certificate": .string(certificate),
            "chain": .string(chain), "attestationKey": .string(attestationKey), "format": .string(format),
            "algorithm": .string(algorithm),
        ]
    }
}

extension Boot.EventLog.Reply: WireReply {
    var wire: [String: JSONValue] { ["format": .string(format), "data": .string(data.base64)] }
}

extension Boot.Reset.Reply: WireReply {
    var wire: [String: JSONValue] { ["bootId": .string(bootID)] }
}

extension Boot.Release.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        entity = try p.string("entity", maxLength: 64)
    }
}

extension Boot.Release.Reply: WireReply {
    var wire: [String: JSONValue] {
        ["released": .array(released.map(JSONValue.string)), "state": .string(state), "reason": reason.wire]
    }
}
