import Foundation
import UkeyAPI
import UkeyClient
import UkeyVarlink

/// Decisions from inside a guest: ukeyd's CheckExecBatch over the VM's virtio-serial port
/// (`/dev/virtio-ports/io.ukey.guard.0`). ukeyd knows the VM from the port's host end, so no
/// call names it.
///
/// A port is a byte stream that outlives a call: a reply to a call abandoned at its deadline can
/// still arrive, ahead of the next call's. Each call carries a fresh `tag` that ukeyd echoes,
/// and only the reply with this call's tag counts; anything else is read and dropped. Every wait
/// is bounded by the deadline (poll), since a port has no socket timeouts.
public final class PortDecisions: DecisionSource {
    let path: String
    private let fd: Int32
    private var framing = VarlinkFraming(limit: 8 << 20)
    private var calls: UInt64 = 0
    private let nonce = UInt64.random(in: 0...UInt64.max)

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            throw Failure(description: "cannot open the guard port \(path): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// One way (no reply to wait for on a port), naming no VM: ukeyd records it as the channel's.
    public func report(
        _ event: GuardReport,
        vm: String,
        mounts: [String],
        gaps: [String],
        deadline: TimeInterval
    ) throws {
        let request = Runtime.GuardEvent.Request(vm: nil, event: event.rawValue, mounts: mounts, gaps: gaps)
        try write(
            VarlinkFraming.frame(VarlinkCodec.encode(VarlinkCall(Runtime.GuardEvent.self, request, oneway: true))),
            until: Date() + deadline
        )
    }

    public func decide(vm: String, files: [(path: String, sha256: [UInt8])], deadline: TimeInterval) throws -> Decisions
    {
        calls += 1
        let tag = String(nonce, radix: 16) + "-" + String(calls)
        let request = Runtime.CheckExecBatch.Request(
            items: files.map { .init(vm: nil, path: $0.path, digest: "sha256:" + Hex.encode($0.sha256)) },
            tag: tag
        )
        let until = Date() + deadline
        try write(
            VarlinkFraming.frame(VarlinkCodec.encode(VarlinkCall(Runtime.CheckExecBatch.self, request))),
            until: until
        )
        var lastError: String?
        while true {
            for message in try readMessages(until: until, lastError: lastError) {
                guard let reply = try? VarlinkCodec.decodeReply(message) else { continue }
                if let error = reply.error {
                    // Not matched to a call (errors carry no tag): remembered, not acted on.
                    lastError = error
                    continue
                }
                guard reply.parameters["tag"] == .string(tag) else { continue }
                return try Decisions(reply.decoded(as: Runtime.CheckExecBatch.self), files: files.count)
            }
        }
    }

    private func write(_ bytes: [UInt8], until: Date) throws {
        var offset = 0
        while offset < bytes.count {
            try wait(for: Int16(POLLOUT), until: until, doing: "writing to")
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else { throw Failure(description: "writing to \(path): \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Reads what is there (at least something), as whole messages; none yet is an empty list.
    private func readMessages(until: Date, lastError: String?) throws -> [[UInt8]] {
        try wait(for: Int16(POLLIN), until: until, doing: "reading from", lastError: lastError)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && (errno == EINTR || errno == EAGAIN) { return [] }
        guard n > 0 else {
            // The host end is not connected (ukeyd gone): nothing to read until it is back.
            usleep(10_000)
            return []
        }
        do {
            return try framing.feed(buffer[0..<n])
        } catch {
            // Half a message from before, or garbage: start again at the next message.
            framing = VarlinkFraming(limit: 8 << 20)
            return []
        }
    }

    private func wait(for events: Int16, until: Date, doing: String, lastError: String? = nil) throws {
        while true {
            let left = until.timeIntervalSinceNow
            guard left > 0 else {
                throw Failure(
                    description:
                        "no answer from ukeyd on \(path) in time\(lastError.map { " (last error: \($0))" } ?? "")"
                )
            }
            var poller = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&poller, 1, Int32(min(left * 1000, 1000).rounded(.up)))
            if ready > 0 { return }
            if ready < 0 && errno != EINTR {
                throw Failure(description: "\(doing) \(path): \(String(cString: strerror(errno)))")
            }
        }
    }
}
