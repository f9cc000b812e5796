import Testing
import UkeyTesting
import UkeyVarlink

@Suite("Varlink framing and messages")
struct VarlinkFramingTests {
    static let calls = [
        VarlinkCall(method: "org.varlink.service.GetInfo"),
        VarlinkCall(
            method: "io.ukey.Boot.Measure",
            parameters: ["entity": "vmm", "component": "kernel", "digest": "sha256:00"]
        ),
        VarlinkCall(method: "io.ukey.Auth.Login", parameters: ["user": "alice", "pin": "ünïcødé"], more: true),
    ]
    static var stream: [UInt8] { calls.flatMap { VarlinkFraming.frame(VarlinkCodec.encode($0)) } }

    @Test("one byte at a time yields every message, in order")
    func dripFeed() throws {
        var framing = VarlinkFraming()
        var messages: [[UInt8]] = []
        for byte in Self.stream { messages += try framing.feed([byte]) }
        #expect(try messages.map { try VarlinkCodec.decodeCall($0) } == Self.calls)
        #expect(framing.pendingCount == 0)
    }

    @Test("many messages in one read")
    func coalesced() throws {
        var framing = VarlinkFraming()
        let messages = try framing.feed(Self.stream + Self.stream)
        #expect(try messages.map { try VarlinkCodec.decodeCall($0) } == Self.calls + Self.calls)
    }

    @Test("every truncated prefix yields only the complete messages before it")
    func truncatedPrefixes() throws {
        let stream = Self.stream
        let ends = stream.indices.filter { stream[$0] == 0 }
        for length in 0...stream.count {
            var framing = VarlinkFraming()
            let messages = try framing.feed(stream[..<length])
            #expect(messages.count == ends.filter { $0 < length }.count)
            #expect(framing.pendingCount == length - (ends.last { $0 < length }.map { $0 + 1 } ?? 0))
        }
    }

    @Test("a message over the limit is refused, even before its terminator arrives")
    func overLimit() {
        var framing = VarlinkFraming(limit: 100)
        #expect(throws: VarlinkError.self) { try framing.feed([UInt8](repeating: 0x41, count: 101)) }
        var exact = VarlinkFraming(limit: 100)
        #expect(throws: Never.self) { try exact.feed([UInt8](repeating: 0x41, count: 100) + [0]) }
        var terminated = VarlinkFraming(limit: 100)
        #expect(throws: VarlinkError.self) { try terminated.feed([UInt8](repeating: 0x41, count: 101) + [0]) }
        var split = VarlinkFraming(limit: 100)
        #expect(throws: VarlinkError.self) {
            for _ in 0..<20 { _ = try split.feed([UInt8](repeating: 0x41, count: 10)) }
        }
    }

    @Test(
        "garbage is a protocol error with a reason, never a crash",
        arguments: [
            ([0xff, 0xfe, 0x7b, 0x7d], "not valid UTF-8"),
            (Array("[1,2,3]".utf8), "must be a JSON object"),
            (Array("\"method\"".utf8), "must be a JSON object"),
            (Array("{\"method\":".utf8), "not valid JSON"),
            (Array("{}".utf8), "needs a string 'method'"),
            (Array("{\"method\":5}".utf8), "needs a string 'method'"),
            (Array("{\"method\":\"a.B\",\"parameters\":[]}".utf8), "'parameters' must be an object"),
            (Array("{\"method\":\"a.B\",\"more\":\"yes\"}".utf8), "'more' must be true or false"),
            (Array("{\"method\":\"a.B\",\"upgrade\":true}".utf8), "upgrades are not supported"),
        ]
    )
    func garbage(bytes: [UInt8], reason: String) {
        #expect {
            try VarlinkCodec.decodeCall(bytes)
        } throws: { error in
            let error = error as! VarlinkError
            return error.name == "io.ukey.ProtocolError"
                && error.parameters["reason"]?.stringValue?.contains(reason) == true
        }
    }

    @Test("a reply's bytes written once are the bytes written afresh, and any change forgets them")
    func framedOnce() throws {
        let reply = VarlinkReply(parameters: ["vendor": "ukey", "interfaces": ["a", "b"]])
        let once = reply.framedOnce()
        #expect(once.framed == VarlinkFraming.frame(VarlinkCodec.encode(reply)))
        #expect(once.wireBytes == reply.wireBytes)
        #expect(once == reply)
        for change in [
            { (r: inout VarlinkReply) in r.continues = true },
            { (r: inout VarlinkReply) in r.error = "io.ukey.Other" },
            { (r: inout VarlinkReply) in r.parameters["vendor"] = "other" },
        ] {
            var changed = once
            change(&changed)
            #expect(changed.framed == nil)
            #expect(try VarlinkCodec.decodeReply(changed.wireBytes.dropLast()) == changed)
        }
    }

    @Test("a message with bytes past ASCII is read when it is UTF-8 and refused when not, wherever the byte sits")
    func utf8() throws {
        let call = try VarlinkCodec.decodeCall(Array(#"{"method":"a.B","parameters":{"name":"été ✓"}}"#.utf8))
        #expect(call.parameters["name"]?.stringValue == "été ✓")
        for bad: [UInt8] in [[0xC3, 0x28], [0xFF], [0xE2, 0x9C], [0x80]] {
            let inString = Array(#"{"method":"a.B","parameters":{"name":""#.utf8) + bad + Array(#""}}"#.utf8)
            let inKey = Array(#"{"method":"a.B","parameters":{""#.utf8) + bad + Array(#"":1}}"#.utf8)
            for bytes in [inString, inKey] {
                #expect(throws: VarlinkError.self) { try VarlinkCodec.decodeCall(bytes) }
            }
        }
    }

    @Test("replies round-trip, with errors and continues")
    func replies() throws {
        let reply = VarlinkReply(parameters: ["retriesLeft": 2], error: "io.ukey.Auth.BadPin", continues: true)
        #expect(try VarlinkCodec.decodeReply(VarlinkCodec.encode(reply)) == reply)
        #expect(VarlinkCall(method: "io.ukey.Boot.Measure").interface == "io.ukey.Boot")
        #expect(VarlinkCall(method: "io.ukey.Boot.Measure").methodName == "Measure")
    }

    @Test(
        "random bytes: the framer splits as a plain split on NUL does, fed whole or in pieces; the decoder refuses with a ProtocolError or reads a call that round-trips"
    )
    func fuzz() throws {
        var generator = SeededRandom.forTest()
        let alphabet = Array("{}\"method:0\u{0}".utf8)
        var refusedForSize = 0
        for _ in 0..<2000 {
            // One stream in four has no terminator at all, so that long messages reach the limit;
            // one in four is messages within a few bytes of the limit, where an off-by-one would hide.
            let bytes: [UInt8]
            switch Int.random(in: 0..<4, using: &generator) {
            case 0:
                bytes = (0..<Int.random(in: 0...600, using: &generator)).map { _ in
                    UInt8.random(in: 1...255, using: &generator)
                }
            case 1:
                bytes = (0..<Int.random(in: 1...3, using: &generator)).flatMap { _ in
                    [UInt8](repeating: 0x41, count: Int.random(in: 508...516, using: &generator))
                        + (Bool.random(using: &generator) ? [0] : [])
                }
            default:
                bytes = (0..<Int.random(in: 0...600, using: &generator)).map { _ in
                    Bool.random(using: &generator)
                        ? UInt8.random(in: 0...255, using: &generator) : alphabet.randomElement(using: &generator)!
                }
            }
            // The reference: every NUL ends a message; any message (or the unterminated rest) over the limit is refused.
            let pieces = bytes.split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
            let expected = Array(pieces.dropLast())
            let expectRefusal = pieces.contains { $0.count > 512 }

            var whole = VarlinkFraming(limit: 512)
            var inPieces = VarlinkFraming(limit: 512)
            let oneRead = try? whole.feed(bytes)
            var manyReads: [[UInt8]]? = []
            var rest = bytes[...]
            while !rest.isEmpty, manyReads != nil {
                let chunk = rest.prefix(Int.random(in: 1...64, using: &generator))
                rest = rest.dropFirst(chunk.count)
                if let messages = try? inPieces.feed(chunk) { manyReads! += messages } else { manyReads = nil }
            }
            if expectRefusal {
                refusedForSize += 1
                #expect(oneRead == nil && manyReads == nil, "a message over the limit was taken; \(generator)")
                continue
            }
            #expect(oneRead == expected && manyReads == expected, "\(generator)")
            #expect(whole.pendingCount == pieces.last!.count, "\(generator)")
            for message in expected {
                do {
                    let call = try VarlinkCodec.decodeCall(message)
                    #expect(try VarlinkCodec.decodeCall(VarlinkCodec.encode(call)) == call, "\(generator)")
                } catch {
                    #expect(error.name == "io.ukey.ProtocolError", "\(error); \(generator)")
                }
            }
        }
        // Both outcomes must occur, or the loop checks less than it says.
        #expect(refusedForSize > 0, "\(generator)")
        let directed = (0..<200).map { _ in
            VarlinkCall(
                method: "a.B\(Int.random(in: 0...9, using: &generator))",
                parameters: ["k": .int(Int.random(in: -9...9, using: &generator))],
                more: Bool.random(using: &generator)
            )
        }
        for call in directed { #expect(try VarlinkCodec.decodeCall(VarlinkCodec.encode(call)) == call, "\(generator)") }
    }
}
