import UkeyAudit
import UkeyVarlink

// io.ukey.Audit on the wire (the IDL: `VarlinkInterface.audit`).

extension Audit.Query.Request: WireRequest {
    init(wire p: Parameters) throws(ServiceError) {
        since = try p.optionalInt("since") ?? 1
        limit = try p.optionalInt("limit") ?? 100
        type = try p.optionalString("type", maxLength: 64)
    }
}

extension Audit.Query.Reply: WireReply {
    var wire: [String: JSONValue] { ["records": .array(records.map(JSONValue.object)), "next": .int(next)] }
}

extension AuditChainVerification: WireReply {
    var wire: [String: JSONValue] {
        [
            "ok": .bool(ok), "count": .int(count), "checkpoints": .int(checkpoints), "unsignedTail": .int(unsignedTail),
            "firstBad": firstBad.map { .int(Int($0)) } ?? .null, "reason": reason.wire,
            "files": .array(files.map(JSONValue.string)),
            "removedByRetention": .array(
                removedByRetention.map { removed in
                    .object([
                        "archive": .string(removed.name), "upto": .int(Int(removed.upto)),
                        "head": .string(removed.head), "recordedAt": .int(Int(removed.recordedAt)),
                    ])
                }
            ),
        ]
    }
}
