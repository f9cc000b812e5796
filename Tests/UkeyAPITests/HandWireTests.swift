import Testing
import UkeyAPI
import UkeyCodec

/// CheckExec's and Measure's requests and replies are read and written by hand (the exec and
/// boot paths' cost); these hold the hand conversions to the `Codable` ones every other message
/// uses.
@Suite("the hand-written wire forms (CheckExec, Measure) are their Codable ones")
struct HandWireTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    static let requests: [[String: JSONValue]] = [
        ["vm": "office", "path": "/usr/bin/x", "digest": .string(digest)],
        ["path": "/usr/bin/x", "digest": .string(digest)],
        ["vm": .null, "path": "/usr/bin/x", "digest": .string(digest)],
        ["vm": "office", "path": "/usr/bin/x"],
        ["vm": "office", "digest": .string(digest)],
        ["vm": 1, "path": "/usr/bin/x", "digest": .string(digest)],
        ["vm": "office", "path": .null, "digest": .string(digest)],
        ["vm": "office", "path": "/usr/bin/x\u{0}/evil", "digest": .string(digest)],
        ["vm": "of\u{0}fice", "path": "/x", "digest": .string(digest)],
        ["vm": .string(String(repeating: "v", count: 65)), "path": "/x", "digest": .string(digest)],
        ["vm": "office", "path": .string("/" + String(repeating: "p", count: 4096)), "digest": .string(digest)],
        ["vm": "office", "path": "/x", "digest": .string(String(repeating: "d", count: 201))],
        ["vm": "office", "path": "/x", "digest": [1]],
        ["vm": "office", "path": "/x", "digest": .string(digest), "extra": true],
    ]

    @Test("every request reads the same by hand and by Codable, or is refused naming the same parameter")
    func requests() {
        for parameters in Self.requests {
            let byHand = Result { () throws(APIError) in try Runtime.CheckExec.Request(wire: parameters) }
            let byCodable = Result { () throws(APIError) -> Runtime.CheckExec.Request in
                let request = try JSONValueDecoder.decode(Runtime.CheckExec.Request.self, from: parameters)
                try request.validate()
                return request
            }
            #expect(byHand == byCodable, "\(parameters)")
            if case .success(let request) = byHand {
                #expect(request.wire == JSONValueEncoder.encode(request))
            }
        }
        // The hand reader can fail: a refused request is refused.
        #expect(throws: APIError.invalidParameter("digest")) {
            try Runtime.CheckExec.Request(wire: ["vm": "office", "path": "/x"])
        }
    }

    @Test("every reply writes and reads the same by hand and by Codable")
    func replies() throws {
        let replies = [
            Runtime.CheckExec.Reply(decision: "allow", rule: "office/soffice", reason: nil),
            Runtime.CheckExec.Reply(decision: "deny", rule: nil, reason: "not-in-whitelist"),
            Runtime.CheckExec.Reply(decision: "allow", rule: nil, reason: "audit-mode: not-in-whitelist"),
        ]
        for reply in replies {
            #expect(reply.wire == JSONValueEncoder.encode(reply))
            #expect(try Runtime.CheckExec.Reply(wire: reply.wire) == reply)
            #expect(try JSONValueDecoder.decode(Runtime.CheckExec.Reply.self, from: reply.wire) == reply)
        }
        for bad: [String: JSONValue] in [[:], ["decision": 1], ["decision": "allow", "rule": 2]] {
            let byHand = Result { () throws(APIError) in try Runtime.CheckExec.Reply(wire: bad) }
            let byCodable = Result { () throws(APIError) in
                try JSONValueDecoder.decode(Runtime.CheckExec.Reply.self, from: bad)
            }
            #expect(byHand == byCodable, "\(bad)")
        }
    }

    static let measureRequests: [[String: JSONValue]] = [
        ["entity": "vmm", "component": "kernel", "digest": .string(digest)],
        ["entity": "vm1", "component": "disk", "path": "/var/lib/x.qcow2", "hold": "vm1", "session": "s"],
        ["entity": "vmm", "component": "kernel", "digest": .null, "path": .null],
        ["entity": "vmm"],
        ["component": "kernel"],
        ["entity": 3, "component": "kernel"],
        ["entity": "vmm", "component": "kernel", "hold": false],
        ["entity": "vmm", "component": "kern\u{0}el"],
        ["entity": .string(String(repeating: "e", count: 65)), "component": "kernel"],
        ["entity": "vmm", "component": "kernel", "session": .string(String(repeating: "s", count: 257))],
        ["entity": "vmm", "component": "kernel", "path": .string("/" + String(repeating: "p", count: 4096))],
    ]

    @Test("every Measure request and reply reads and writes the same by hand and by Codable")
    func measure() throws {
        for parameters in Self.measureRequests {
            let byHand = Result { () throws(APIError) in try Boot.Measure.Request(wire: parameters) }
            let byCodable = Result { () throws(APIError) -> Boot.Measure.Request in
                let request = try JSONValueDecoder.decode(Boot.Measure.Request.self, from: parameters)
                try request.validate()
                return request
            }
            #expect(byHand == byCodable, "\(parameters)")
            if case .success(let request) = byHand { #expect(request.wire == JSONValueEncoder.encode(request)) }
        }
        let reply = Boot.Measure.Reply(
            verdict: "trusted",
            match: true,
            load: true,
            reason: nil,
            register: 8,
            eventIndex: 3,
            digest: Self.digest,
            cached: false
        )
        #expect(reply.wire == JSONValueEncoder.encode(reply))
        #expect(try Boot.Measure.Reply(wire: reply.wire) == reply)
        var refused = reply
        refused.reason = "digest-mismatch"
        #expect(try Boot.Measure.Reply(wire: refused.wire) == refused)
        var missing = reply.wire
        missing["eventIndex"] = nil
        #expect(throws: APIError.invalidParameter("eventIndex")) { try Boot.Measure.Reply(wire: missing) }
    }
}
