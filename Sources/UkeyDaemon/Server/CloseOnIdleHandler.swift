import NIOCore

/// Closes a connection that sent nothing for the idle timeout: a client that sends half a message
/// and stalls, or holds a connection open, gives its slot back. Once the connection is served,
/// its state machine decides (`decide`): a follower is silent by design and stays open.
final class CloseOnIdleHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Whether to close at the timeout; set on the event loop when the connection is served.
    var decide: () -> Bool = { true }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if decide() { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
