import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import UkeyKeylime

/// The agent's HTTPS endpoint: TLS 1.2 or later with the registered certificate, a client
/// certificate required and checked against Keylime's CA (the verifier's and tenant's), HTTP/1.1,
/// one request per connection. A request is parsed by `AgentRequest` (refused, naming why, if it
/// is not one Keylime makes) and answered off the event loop, since a quote waits for the TPM.
struct AgentServer {
    let host: String
    let port: Int
    let tls: NIOSSLContext
    let service: QuoteService

    static func context(keys: AgentKeys, trustedClientCA: String) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(keys.tlsCertificatePEM.utf8)).map {
                .certificate($0)
            },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(keys.tlsKeyPEM.utf8), format: .pem))
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .file(trustedClientCA)
        return try NIOSSLContext(configuration: configuration)
    }

    func run(ready: @Sendable () -> Void) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let pool = NIOThreadPool.singleton
        let tls = tls
        let service = service
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AgentHTTPHandler(service: service, pool: pool))
                }
            }
            .bind(host: host, port: port).get()
        ready()
        try await channel.closeFuture.get()
    }
}

/// One HTTP request in, one response out, then the connection closes.
final class AgentHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used on its channel's event loop only; the answer comes back to that loop.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let service: QuoteService
    let pool: NIOThreadPool
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var answered = false

    init(service: QuoteService, pool: NIOThreadPool) {
        self.service = service
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body(let chunk):
            // Keylime's GETs have no body; a large one is not read into memory.
            bodyBytes += chunk.readableBytes
            if bodyBytes > 64 * 1024, !answered {
                respond(context, 413, AgentResponse.failure(413, "the request body is too large"))
            }
        case .end:
            guard let head, !answered else { return }
            self.head = nil
            let parsed: AgentRequest
            do {
                parsed = try AgentRequest.parse(method: "\(head.method)", target: head.uri)
            } catch {
                respond(context, error.status, AgentResponse.failure(error.status, error.reason))
                return
            }
            let service = service
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            pool.runIfActive(eventLoop: context.eventLoop) { service.answer(parsed) }.whenComplete { result in
                switch result {
                case .success(let (status, body)): self.respond(bound.value, status, body)
                case .failure(let error):
                    self.respond(bound.value, 500, AgentResponse.failure(500, "the agent is stopping: \(error)"))
                }
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ status: Int, _ body: [UInt8]) {
        answered = true
        let channel = context.channel
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
