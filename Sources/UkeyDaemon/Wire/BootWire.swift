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
        phase = try p.optionalString("phase", maxLength: 16)
        if let phase, phase != "begin" { throw .invalidParameter("phase") }
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
            "cached": .bool(cached),
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
        [
            "released": .array(released.map(JSONValue.string)), "state": .string(state), "reason": reason.wire,
            "sealed": .array(sealed.map(\.wire)),
            "unsealed": .array(
                unsealed.map { .object(["component": .string($0.component), "reason": .string($0.reason)]) }
            ),
        ]
    }
}

extension Boot.Release.Sealed {
    var wire: JSONValue {
        .object([
            "component": .string(component), "previous": .string(previous.description),
            "digest": .string(digest.description),
        ])
    }
}

extension Boot.States.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        entity = try p.optionalString("entity", maxLength: 64)
        hash = try p.optionalBool("hash") ?? false
    }
}

extension Boot.States.Reply: WireReply {
    var wire: [String: JSONValue] {
        [
            "vms": .array(
                vms.map { vm in
                    .object([
                        "entity": .string(vm.entity), "state": .string(vm.state), "reason": vm.reason.wire,
                        "components": .array(
                            vm.components.map { c in
                                .object([
                                    "component": .string(c.component), "path": c.path.wire,
                                    "base": .string(c.base.description),
                                    "expected": .string(c.expected.description),
                                    "sealed": c.sealed.map(\.description).wire,
                                    "sealedAt": c.sealedAt.wire, "by": c.by.wire, "boot": c.boot.wire,
                                    "uid": c.uid.map { Int($0) }.wire,
                                    "current": c.current.map(\.description).wire,
                                    "matches": c.matches.map(JSONValue.bool) ?? .null,
                                    "problem": c.problem.wire,
                                ])
                            }
                        ),
                    ])
                }
            )
        ]
    }
}

extension Boot.AcceptState.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        entity = try p.string("entity", maxLength: 64)
        component = try p.optionalString("component", maxLength: 64)
        path = try p.optionalString("path")
    }
}

extension Boot.AcceptState.Reply: WireReply {
    var wire: [String: JSONValue] {
        ["sealed": .array(sealed.map(\.wire)), "released": .array(released.map(JSONValue.string))]
    }
}
