import UkeyVarlink

extension FuzzTarget {
    /// The framer and the call decoder, as ukeyd runs them on a connection's bytes.
    static let varlink = FuzzTarget(
        name: "varlink",
        property:
            "framing equals a plain split on NUL (fed whole and in 7-byte pieces), refusing any message over the limit; a decoded call re-encodes to the same call",
        check: { bytes throws(FuzzFailure) in
            let limit = 512
            let pieces = bytes.split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
            let expected = Array(pieces.dropLast())
            let tooLarge = pieces.contains { $0.count > limit }
            var whole = VarlinkFraming(limit: limit)
            var stepwise = VarlinkFraming(limit: limit)
            let oneRead = try? whole.feed(bytes)
            var manyReads: [[UInt8]]? = []
            var index = 0
            while index < bytes.count, manyReads != nil {
                let chunk = bytes[index..<min(index + 7, bytes.count)]
                index += chunk.count
                if let messages = try? stepwise.feed(chunk) { manyReads! += messages } else { manyReads = nil }
            }
            if tooLarge {
                try require(oneRead == nil && manyReads == nil, "a message over the \(limit)-byte limit was taken")
                return
            }
            try require(
                oneRead == expected && manyReads == expected,
                "the framer split \(bytes.count) bytes otherwise than on NUL"
            )
            for message in expected {
                let call: VarlinkCall
                let outcome = Result { () throws(VarlinkError) -> VarlinkCall in try VarlinkCodec.decodeCall(message) }
                switch outcome {
                case .success(let decoded): call = decoded
                case .failure(let error):
                    try require(
                        error.name == "io.ukey.ProtocolError",
                        "a refused call is \(error.name), not a ProtocolError"
                    )
                    continue
                }
                try require(
                    (try? VarlinkCodec.decodeCall(VarlinkCodec.encode(call))) == call,
                    "call \(call) does not survive encoding"
                )
            }
        },
        seeds: {
            [
                VarlinkCodec.encode(VarlinkCall(method: "org.varlink.service.GetInfo")) + [0],
                VarlinkCodec.encode(
                    VarlinkCall(
                        method: "io.ukey.Boot.Measure",
                        parameters: ["entity": "vmm", "component": "kernel", "digest": "sha256:00"]
                    )
                ) + [0]
                    + VarlinkCodec.encode(
                        VarlinkCall(
                            method: "io.ukey.Auth.Login",
                            parameters: ["user": "alice", "pin": "ünïcødé"],
                            more: true
                        )
                    ) + [0],
                Array(#"{"method":"a.B","upgrade":true}"#.utf8) + [0, 0x7B],
            ]
        }
    )
}
