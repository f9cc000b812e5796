import Foundation
import UkeyVarlink
#if canImport(Glibc)
import Glibc
#endif

/// A blocking varlink client over a Unix socket: what ukeyctl and the tests use. One call at a
/// time, or pipelined with `send` then `receive` (replies come in order).
public final class VarlinkConnection {
    /// Transport failures, as distinct from error replies (which are `VarlinkError`).
    public enum Failure: Error, CustomStringConvertible {
        case unreachable(String)
        case closed
        case timedOut
        case malformed(String)

        public var description: String {
            switch self {
            case .unreachable(let why): "cannot reach ukeyd: \(why)"
            case .closed: "ukeyd closed the connection"
            case .timedOut: "ukeyd did not answer in time"
            case .malformed(let why): "ukeyd sent a malformed reply: \(why)"
            }
        }
    }

    private let fd: Int32
    /// Closes the descriptor: `close(2)`, or a test's counting stand-in (each descriptor must be
    /// closed exactly once, and a race window cannot show that, a count can).
    private let closeDescriptor: (Int32) -> Void
    private var framing = VarlinkFraming(limit: 64 << 20)
    private var pending: [[UInt8]] = []
    /// Where replies are read to: allocated once (a guard asks on every cold exec, and a fresh
    /// zeroed 64 KiB per read cost more than the call).
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 8)

    /// Connects to `path`; `timeout` bounds every read.
    ///
    /// `fd` is stored only once the connection stands: a class whose stored properties are all
    /// set runs its deinit even when its init then throws, and that deinit closes `fd`, so a
    /// failure path that closed it too would close the descriptor twice, and the second close
    /// could take another thread's newly opened file.
    public convenience init(path: String, timeout: TimeInterval = 60) throws(Failure) {
        try self.init(path: path, timeout: timeout, closeDescriptor: { _ = close($0) })
    }

    package init(path: String, timeout: TimeInterval = 60, closeDescriptor: @escaping (Int32) -> Void) throws(Failure) {
        self.closeDescriptor = closeDescriptor
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable(String(cString: strerror(errno))) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            closeDescriptor(fd)
            throw .unreachable("socket path is too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let status = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0 else {
            let why = String(cString: strerror(errno))
            closeDescriptor(fd)
            throw .unreachable("\(path): \(why)")
        }
        Self.setReceiveTimeout(fd, timeout)
        self.fd = fd
    }

    /// Bounds every read from now on by `timeout` seconds (at least a millisecond).
    public func setReceiveTimeout(_ timeout: TimeInterval) {
        Self.setReceiveTimeout(fd, max(timeout, 0.001))
    }

    private static func setReceiveTimeout(_ fd: Int32, _ timeout: TimeInterval) {
        var interval = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        closeDescriptor(fd)
        readBuffer.deallocate()
    }

    /// Calls a method and returns its reply parameters; an error reply throws `VarlinkError`.
    public func call(_ method: String, _ parameters: [String: JSONValue] = [:]) throws -> [String: JSONValue] {
        do {
            try send(VarlinkCall(method: method, parameters: parameters))
        } catch .closed {
            // A daemon that refuses a connection (too many open) says why and closes at once,
            // often before the call is written; its reason is still waiting to be read.
            if let reply = try? receive(), let error = reply.error { throw VarlinkError(error, reply.parameters) }
            throw Failure.closed
        }
        let reply = try receive()
        if let error = reply.error { throw VarlinkError(error, reply.parameters) }
        return reply.parameters
    }

    public func send(_ call: VarlinkCall) throws(Failure) {
        try sendRaw(VarlinkFraming.frame(VarlinkCodec.encode(call)))
    }

    /// Writes bytes as they are: for tests of framing and garbage.
    public func sendRaw(_ bytes: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a daemon that went away is an error here, not a SIGPIPE that kills the client.
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .closed }
            offset += n
        }
    }

    /// The next reply.
    public func receive() throws(Failure) -> VarlinkReply {
        while pending.isEmpty {
            let n = read(fd, readBuffer.baseAddress, readBuffer.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { throw .timedOut }
            guard n > 0 else { throw .closed }
            do {
                pending += try framing.feed(UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]))
            } catch {
                throw .malformed("\(error)")
            }
        }
        do {
            return try VarlinkCodec.decodeReply(pending.removeFirst())
        } catch {
            throw .malformed("\(error)")
        }
    }
}
