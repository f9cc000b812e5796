import NIOCore
import UkeyVarlink

/// Answers the exec path's question on the connection's event loop, before the bytes reach the
/// connection's task: a call that `Dispatcher.answerImmediately` can answer (an allowed
/// `CheckExec`/`CheckExecBatch`, which leaves no audit record) is read, answered and written
/// without a hop to another thread. Every hop costs a thread's wake-up, and on a host whose cores
/// idle between execs those wake-ups were most of a call's time: this is what puts ukey-guard's
/// cold exec next to fapolicyd's.
///
/// It answers only when doing so cannot change what the client sees:
/// - the connection's task has nothing in hand: every byte passed to it has been read, and every
///   reply to it written (`settled` is how the task says so, through the event loop, after its
///   writes, so a reply here can never overtake one of its);
/// - the read holds exactly one whole message and nothing is pending before it;
/// - the socket takes writes (a client that does not read gets the task's backpressure);
/// - the server is not stopping, and the connection was admitted.
/// Anything else is passed on unchanged, and the task answers it as before, with every limit and
/// every audit record.
final class ImmediateLane: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Answers a decoded call, or nil to pass it on; nil until the connection is admitted.
    typealias Answer = (VarlinkCall) -> VarlinkReply?

    private var answer: Answer?
    /// Reads passed to the task, and how many of them it has settled.
    private var passed: UInt64 = 0
    private var settledUpTo: UInt64 = 0
    /// Calls answered here (for the tests).
    private(set) var answered = 0

    static let name = "ukey-immediate"

    /// Starts answering (on the event loop), for an admitted connection.
    func open(_ answer: @escaping Answer) {
        self.answer = answer
    }

    /// The task has read the first `count` reads passed to it, holds no partial message, and
    /// every reply to them is written (called on the event loop).
    func settled(_ count: UInt64) {
        settledUpTo = max(settledUpTo, count)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if let answer, settledUpTo == passed, context.channel.isWritable, let message = Self.single(buffer),
            let call = try? VarlinkCodec.decodeCall(message), let reply = answer(call)
        {
            answered += 1
            if !call.oneway {
                context.writeAndFlush(
                    wrapOutboundOut(ByteBuffer(bytes: reply.wireBytes)),
                    promise: nil
                )
            }
            return
        }
        passed += 1
        context.fireChannelRead(data)
    }

    /// The one message a read holds when it is exactly one NUL-terminated message.
    static func single(_ buffer: ByteBuffer) -> [UInt8]? {
        let view = buffer.readableBytesView
        guard let last = view.last, last == 0, let first = view.firstIndex(of: 0),
            first == view.index(before: view.endIndex)
        else { return nil }
        return Array(view[view.startIndex..<first])
    }
}
