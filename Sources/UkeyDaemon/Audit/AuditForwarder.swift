import Foundation

/// A copy of every audit record for a collector off the host: the systemd journal (its native
/// protocol on `/run/systemd/journal/socket`, one datagram per record with `UKEY_SEQ=` and
/// `UKEY_HASH=` fields) or syslog (RFC 5424 on `/dev/log`). From there journal-remote or rsyslog
/// carry it where root on this host cannot cut it.
///
/// The copy never delays the local log or a reply: the log hands each durable batch over
/// (`AuditLog.Configuration.durable`), which only queues it, and a thread of this forwarder's own
/// sends. If the collector is away or slow the queue holds up to `capacity` records; past that
/// the oldest are dropped and counted (the local log, which is the record, loses nothing), and
/// the count is logged once the collector takes records again.
final class AuditForwarder: @unchecked Sendable {
    // @unchecked: `queue`, `dropped` and `stopping` are guarded by `condition`.
    enum Destination: String, Sendable, Hashable, CaseIterable {
        case journal, syslog

        var defaultSocket: String {
            switch self {
            case .journal: "/run/systemd/journal/socket"
            case .syslog: "/dev/log"
            }
        }
    }

    static let capacity = 65_536

    let destination: Destination
    let socketPath: String
    private let report: @Sendable (String) -> Void
    private let condition = NSCondition()
    private var queue: [[UInt8]] = []
    private var dropped = 0
    private var stopping = false
    private var thread: Thread?
    /// The kernel's host name, as RFC 5424's HOSTNAME (no resolver lookup: this runs at start).
    private let hostname: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "-" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty || name.contains(" ") ? "-" : name
    }()
    private let pid = getpid()
    /// Used on the sending thread only.
    private let formatter: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()

    init(destination: Destination, socketPath: String?, report: @escaping @Sendable (String) -> Void) {
        self.destination = destination
        self.socketPath = socketPath ?? destination.defaultSocket
        self.report = report
        let thread = Thread { [weak self] in self?.run() }
        thread.name = "ukeyd audit forwarder"
        self.thread = thread
        thread.start()
    }

    /// Queues durable lines; returns at once.
    func forward(_ lines: [[UInt8]]) {
        condition.lock()
        queue.append(contentsOf: lines)
        if queue.count > Self.capacity {
            let excess = queue.count - Self.capacity
            queue.removeFirst(excess)
            dropped += excess
        }
        condition.signal()
        condition.unlock()
    }

    /// Sends what is queued (waiting up to `timeout` for the collector), then stops the thread.
    func stop(timeout: TimeInterval = 2) {
        let deadline = Date() + timeout
        condition.lock()
        while !queue.isEmpty && Date() < deadline { _ = condition.wait(until: min(deadline, Date() + 0.05)) }
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        var socket: Int32 = -1
        var lastComplaint = Date.distantPast
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if stopping && queue.isEmpty {
                condition.unlock()
                break
            }
            let line = queue[0]
            condition.unlock()

            if socket < 0 { socket = Self.connect(socketPath) }
            let sent = socket >= 0 && send(socket, datagram(for: line))
            if sent {
                condition.lock()
                queue.removeFirst()
                let missed = dropped
                dropped = 0
                condition.broadcast()
                condition.unlock()
                if missed > 0 {
                    report(
                        "the audit collector at \(socketPath) missed \(missed) records while it was away (the local log has them)"
                    )
                }
            } else {
                if socket >= 0 { close(socket) }
                socket = -1
                if Date().timeIntervalSince(lastComplaint) > 60 {
                    lastComplaint = Date()
                    report(
                        "cannot forward audit records to \(socketPath): \(String(cString: strerror(errno))); retrying"
                    )
                }
                condition.lock()
                if !stopping { _ = condition.wait(until: Date() + 0.2) }
                let give = stopping
                condition.unlock()
                if give { break }
            }
        }
        if socket >= 0 { close(socket) }
    }

    /// The datagram for one record.
    func datagram(for line: [UInt8]) -> [UInt8] {
        switch destination {
        case .journal:
            // Native protocol: KEY=VALUE lines; a record never holds a raw newline (JSON escapes it).
            let (seq, hash) = Self.seqAndHash(line)
            var out = Array("SYSLOG_IDENTIFIER=ukeyd\nPRIORITY=6\nUKEY_SEQ=\(seq)\nUKEY_HASH=\(hash)\nMESSAGE=".utf8)
            out += line
            out.append(0x0A)
            return out
        case .syslog:
            // RFC 5424: <authpriv.info>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG
            let header = "<86>1 \(formatter.string(from: Date())) \(hostname) ukeyd \(pid) audit - "
            return Array(header.utf8) + line
        }
    }

    /// `seq` and `hash` as the line states them (the line is ours, written a moment ago).
    static func seqAndHash(_ line: [UInt8]) -> (String, String) {
        let text = String(decoding: line, as: UTF8.self)
        let seq = text.dropFirst(#"{"seq":"#.count).prefix { $0.isNumber }
        let hash = text.hasSuffix("\"}") ? String(text.dropLast(2).suffix(64)) : ""
        return (String(seq), hash)
    }

    private static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            return -1
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    private func send(_ fd: Int32, _ datagram: [UInt8]) -> Bool {
        while true {
            let n = datagram.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            return n == datagram.count
        }
    }
}
