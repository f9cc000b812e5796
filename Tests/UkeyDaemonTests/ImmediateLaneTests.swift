import NIOCore
import NIOEmbedded
import Testing
import UkeyVarlink

@testable import UkeyDaemon

/// The immediate lane answers on the event loop only when that cannot change what the client
/// sees; everything else must reach the connection's task byte for byte, in order.
@Suite("ukeyd: the immediate lane answers only what cannot overtake another reply")
struct ImmediateLaneTests {
    static let check = VarlinkCall(method: "io.ukey.Runtime.CheckExecBatch", parameters: ["items": [], "vm": "vmm"])
    static let reply = VarlinkReply(parameters: ["results": [], "generation": 7, "onTimeout": "deny"])

    /// A channel with the lane, opened with an answer that takes CheckExecBatch only.
    static func channel(open: Bool = true) throws -> (EmbeddedChannel, ImmediateLane) {
        let lane = ImmediateLane()
        let channel = EmbeddedChannel(handler: lane)
        if open { lane.open { $0.method == check.method ? reply : nil } }
        return (channel, lane)
    }

    static func bytes(_ calls: [VarlinkCall]) -> ByteBuffer {
        ByteBuffer(bytes: calls.flatMap { VarlinkFraming.frame(VarlinkCodec.encode($0)) })
    }

    /// What the lane passed on to the task, as bytes.
    static func passed(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var out: [UInt8] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { out += Array(buffer.readableBytesView) }
        return out
    }

    /// The replies the lane wrote itself.
    static func written(_ channel: EmbeddedChannel) throws -> [VarlinkReply] {
        var replies: [VarlinkReply] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            var framing = VarlinkFraming()
            for message in try framing.feed(buffer.readableBytesView) {
                replies.append(try VarlinkCodec.decodeReply(message))
            }
        }
        return replies
    }

    @Test("a lone call it can answer is answered on the loop and never reaches the task")
    func answers() throws {
        let (channel, lane) = try Self.channel()
        try channel.writeInbound(Self.bytes([Self.check]))
        #expect(try Self.passed(channel).isEmpty)
        #expect(try Self.written(channel).map(\.parameters) == [Self.reply.parameters])
        #expect(lane.answered == 1)
    }

    @Test(
        "an unopened lane (a refused connection), a declined call, two calls in one read and half a call all go to the task unchanged"
    )
    func passesOn() throws {
        let (closed, _) = try Self.channel(open: false)
        try closed.writeInbound(Self.bytes([Self.check]))
        #expect(try Self.passed(closed) == Array(Self.bytes([Self.check]).readableBytesView))

        for input in [
            Self.bytes([VarlinkCall(method: "org.varlink.service.GetInfo")]),
            Self.bytes([Self.check, Self.check]),
            ByteBuffer(bytes: Array(Self.bytes([Self.check]).readableBytesView.dropLast())),
            ByteBuffer(bytes: Array("{not json".utf8) + [0]),
        ] {
            let (channel, lane) = try Self.channel()
            try channel.writeInbound(input)
            #expect(try Self.passed(channel) == Array(input.readableBytesView))
            #expect(try Self.written(channel).isEmpty)
            #expect(lane.answered == 0)
        }
    }

    @Test(
        "once a read went to the task, calls follow it there until the task says it settled that read; then the lane answers again"
    )
    func waitsForTheTask() throws {
        let (channel, lane) = try Self.channel()
        try channel.writeInbound(Self.bytes([VarlinkCall(method: "org.varlink.service.GetInfo")]))
        try channel.writeInbound(Self.bytes([Self.check]))
        #expect(try Self.written(channel).isEmpty, "answering now would overtake GetInfo's reply")
        #expect(try Self.passed(channel).count > 0)
        lane.settled(1)
        try channel.writeInbound(Self.bytes([Self.check]))
        #expect(try Self.written(channel).isEmpty, "the task has not settled the second read yet")
        lane.settled(3)
        try channel.writeInbound(Self.bytes([Self.check]))
        #expect(try Self.written(channel).count == 1)
        #expect(lane.answered == 1)
    }

    @Test("a client that does not read (the socket takes no more writes) gets the task, and its backpressure")
    func unwritable() throws {
        let (channel, lane) = try Self.channel()
        channel.isWritable = false
        try channel.writeInbound(Self.bytes([Self.check]))
        #expect(try Self.written(channel).isEmpty)
        #expect(try Self.passed(channel).count > 0)
        #expect(lane.answered == 0)
    }

    @Test("a oneway call it can answer is answered with nothing written")
    func oneway() throws {
        let (channel, lane) = try Self.channel()
        try channel.writeInbound(
            Self.bytes([VarlinkCall(method: Self.check.method, parameters: Self.check.parameters, oneway: true)])
        )
        #expect(try Self.written(channel).isEmpty)
        #expect(try Self.passed(channel).isEmpty)
        #expect(lane.answered == 1)
    }
}
