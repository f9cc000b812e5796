import Foundation
import UkeyCore
import UkeyPolicy
import UkeyVarlink

// io.ukey.Admin on the wire (the IDL: `VarlinkInterface.admin`).

extension Admin.Initialize.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        soPIN = try p.string("soPin", maxLength: 64)
        policySignerPEM = try p.string("policySigner", maxLength: 64 << 10)
    }
}

extension Admin.Initialize.Reply: WireReply {
    var wire: [String: JSONValue] { ["rootCertificate": .string(rootCertificate)] }
}

extension Admin.Status.Reply: WireReply {
    var wire: [String: JSONValue] {
        [
            "initialized": .bool(initialized), "backend": .string(backend),
            "roles": roles.map { .object($0.mapValues(JSONValue.string)) } ?? .null,
            "policyVersion": policyVersion.wire, "mode": .string(mode), "bootId": .string(bootID),
            "users": .int(users), "entities": .int(entities), "measurements": .int(measurements),
            "measurementBatches": .int(measurementBatches),
            "guards": .array(
                guards.map { guarded in
                    var item: [String: JSONValue] = [
                        "vm": .string(guarded.key.vm), "via": .string(guarded.key.via.rawValue),
                        "state": .string(guarded.entry.state.rawValue),
                        "since": .string(ISO8601DateFormatter().string(from: guarded.entry.since)),
                    ]
                    if guarded.key.pid != 0 { item["pid"] = .int(Int(guarded.key.pid)) }
                    if let reason = guarded.entry.reason { item["reason"] = .string(reason) }
                    return .object(item)
                }
            ),
        ]
    }
}

extension Admin.LoadPolicy.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        guard let text = try p.optionalString("policy", maxLength: PolicyParser.maxPolicyBytes) else {
            signed = nil
            return
        }
        signed = (Array(text.utf8), try p.base64("signature", maxLength: 256))
    }
}

extension Admin.LoadPolicy.Reply: WireReply {
    var wire: [String: JSONValue] { ["version": version.wire] }
}

extension Admin.AddUser.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        user = try p.string("user", maxLength: 64)
        pin = try p.string("pin", maxLength: 64)
        roles = try p.optionalStrings("roles") ?? []
    }
}

extension Admin.AddUser.Reply: WireReply {
    var wire: [String: JSONValue] { ["certificate": .string(certificate)] }
}

extension Admin.IssueCertificate.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        user = try p.string("user", maxLength: 64)
        csr = try p.optionalString("csr", maxLength: 64 << 10)
    }
}

extension Admin.IssueCertificate.Reply: WireReply {
    var wire: [String: JSONValue] { ["certificate": .string(certificate)] }
}

extension Admin.UnblockPin.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        user = try p.string("user", maxLength: 64)
        soPIN = try p.string("soPin", maxLength: 64)
        newPIN = try p.string("newPin", maxLength: 64)
    }
}

extension Admin.SetMode.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        guard let mode = EnforcementMode(rawValue: try p.string("mode", maxLength: 16)) else {
            throw .invalidParameter("mode")
        }
        self.mode = mode
    }
}

extension Admin.SetMode.Reply: WireReply {
    var wire: [String: JSONValue] { ["mode": .string(mode.rawValue)] }
}

extension Admin.Version.Reply: WireReply {
    var wire: [String: JSONValue] {
        ["product": .string(product), "version": .string(version), "backend": .string(backend)]
    }
}
