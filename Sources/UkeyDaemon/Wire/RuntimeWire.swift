import Foundation
import UkeyVarlink

// io.ukey.Runtime on the wire (the IDL: `VarlinkInterface.runtime`).

extension Runtime.CheckExec.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        guard let digest = try p.digest("digest") else { throw .invalidParameter("digest") }
        self.digest = digest
        vm = try p.string("vm", maxLength: 64)
        path = try p.string("path")
    }
}

extension Runtime.CheckExec.Reply: WireReply {
    var wire: [String: JSONValue] {
        ["decision": .string(decision), "rule": rule.wire, "reason": reason.wire]
    }
}

extension Runtime.CheckExecBatch.Request: WireRequest {
    /// Any item that is not a valid CheckExec request makes the whole batch `items` invalid.
    init(wire p: Parameters) throws(ServiceError) {
        let items = try p.array("items")
        guard items.count <= Runtime.CheckExecBatch.maxItems else { throw .invalidParameter("items") }
        var requests: [Runtime.CheckExec.Request] = []
        requests.reserveCapacity(items.count)
        for item in items {
            guard let fields = item.objectValue, let request = try? Runtime.CheckExec.Request(wire: Parameters(fields))
            else {
                throw .invalidParameter("items")
            }
            requests.append(request)
        }
        self.items = requests
        vm = try p.optionalString("vm", maxLength: 64)
        tag = try p.optionalString("tag", maxLength: 64)
    }
}

extension Runtime.CheckExecBatch.Reply: WireReply {
    var wire: [String: JSONValue] {
        var wire: [String: JSONValue] = [
            "results": .array(results.map { .object($0.wire) }), "generation": .int(Int(generation)),
            "onTimeout": .string(onTimeout), "interpreters": .string(interpreters),
        ]
        if let tag { wire["tag"] = .string(tag) }
        return wire
    }
}

extension Runtime.AllowedFingerprints.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        vm = try p.string("vm", maxLength: 64)
        offset = try p.optionalInt("offset") ?? 0
        limit = try p.optionalInt("limit") ?? Runtime.AllowedFingerprints.maxPage
        guard offset >= 0 else { throw .invalidParameter("offset") }
        guard (1...Runtime.AllowedFingerprints.maxPage).contains(limit) else { throw .invalidParameter("limit") }
    }
}

extension Runtime.AllowedFingerprints.Reply: WireReply {
    var wire: [String: JSONValue] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fingerprints.count * ExecFingerprint.size)
        for fingerprint in fingerprints { fingerprint.append(to: &bytes) }
        return [
            "available": .bool(available), "total": .int(total), "generation": .int(Int(generation)),
            "fingerprints": .string(Data(bytes).base64EncodedString()),
        ]
    }
}

extension Runtime.GuardEvent.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        vm = try p.string("vm", maxLength: 64)
        guard let event = Runtime.GuardEvent.Event(rawValue: try p.string("event", maxLength: 16)) else {
            throw .invalidParameter("event")
        }
        self.event = event
        let mounts = try p.array("mounts")
        guard mounts.count <= 4096 else { throw .invalidParameter("mounts") }
        self.mounts = try mounts.map { (item: JSONValue) throws(ServiceError) -> String in
            guard let mount = item.stringValue, mount.hasPrefix("/"), mount.utf8.count <= 4096 else {
                throw .invalidParameter("mounts")
            }
            return mount
        }
        gaps = try p.optionalStrings("gaps") ?? []
        guard gaps.allSatisfy({ ["memfd-exec", "user-namespaces"].contains($0) }) else {
            throw .invalidParameter("gaps")
        }
    }
}

extension Runtime.GuardEvent.Reply: WireReply {
    var wire: [String: JSONValue] { ["generation": .int(Int(generation))] }
}
