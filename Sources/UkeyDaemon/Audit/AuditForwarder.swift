import Foundation
import UkeyConcurrency

/// A copy of every audit record for a collector off the host: the systemd journal (its native
/// protocol on `/run/systemd/journal/socket`, one datagram per record with `UKEY_SEQ=` and
/// `UKEY_HASH=` fields) or syslog (RFC 5424 on `/dev/log`). From there journal-remote or rsyslog
/// carry it where root on this host cannot cut it.
///
/// The copy never delays the local log or a reply: the log hands each durable batch over
/// (`AuditLog.Configuration.durable`), which only queues it (`Outbox`), and a sender of this
/// forwarder's own sends. If the collector is away or slow the queue holds up to `capacity`
/// records; past that the oldest are dropped and counted (the local log, which is the record,
/// loses nothing), and the count is logged once the collector takes records again.
final class AuditForwarder: Sendable {
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
    private let outbox = Outbox()
    private let sender: Sender

    init(destination: Destination, socketPath: String?, report: @escaping @Sendable (String) -> Void) {
        self.destination = destination
        self.socketPath = socketPath ?? destination.defaultSocket
        sender = Sender(destination: destination, socketPath: self.socketPath, outbox: outbox, report: report)
    }

    /// Queues durable lines; returns at once.
    func forward(_ lines: [[UInt8]]) {
        if outbox.append(lines) { sender.start() }
    }

    /// Sends what is queued (waiting up to `timeout` for the collector), then stops sending.
    func stop(timeout: Duration = .seconds(2)) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.outbox.waitUntilEmpty() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        // A sender that is not running still holds the socket: one last run closes it.
        if outbox.stop() { sender.start() }
    }

    /// `seq` and `hash` as the line states them (the line is ours, written a moment ago).
    static func seqAndHash(_ line: [UInt8]) -> (String, String) {
        let text = String(decoding: line, as: UTF8.self)
        let seq = text.dropFirst(#"{"seq":"#.count).prefix { $0.isNumber }
        let hash = text.hasSuffix("\"}") ? String(text.dropLast(2).suffix(64)) : ""
        return (String(seq), hash)
    }

    fileprivate static func connect(_ path: String) -> Int32 {
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

    fileprivate static func send(_ fd: Int32, _ datagram: [UInt8]) -> Bool {
        while true {
            let n = datagram.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            return n == datagram.count
        }
    }

    /// Sends the queued lines in order, one datagram each, on a queue of its own: a send to a
    /// collector whose socket is full blocks, and must not hold one of the cooperative pool's
    /// threads. A run goes on until the queue is empty, or until the forwarder stops while the
    /// collector is away.
    private actor Sender {
        private nonisolated let executor = QueueExecutor(label: "ukeyd.audit-forwarder")
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

        let destination: Destination
        let socketPath: String
        let outbox: Outbox
        let report: @Sendable (String) -> Void
        private var socket: Int32 = -1
        private var lastComplaint = Date.distantPast
        /// The kernel's host name, as RFC 5424's HOSTNAME (no resolver lookup: this runs at start).
        private let hostname: String = {
            var buffer = [CChar](repeating: 0, count: 256)
            guard gethostname(&buffer, buffer.count - 1) == 0 else { return "-" }
            let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return name.isEmpty || name.contains(" ") ? "-" : name
        }()
        private let pid = getpid()
        private let formatter: ISO8601DateFormatter = {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter
        }()

        init(destination: Destination, socketPath: String, outbox: Outbox, report: @escaping @Sendable (String) -> Void)
        {
            self.destination = destination
            self.socketPath = socketPath
            self.outbox = outbox
            self.report = report
        }

        /// Starts a run; only for a caller that `Outbox` chose to.
        nonisolated func start() {
            Task { await run() }
        }

        private func run() async {
            while let line = outbox.next() {
                if socket < 0 { socket = AuditForwarder.connect(socketPath) }
                if socket >= 0 && AuditForwarder.send(socket, datagram(for: line)) {
                    let missed = outbox.sent()
                    if missed > 0 {
                        report(
                            "the audit collector at \(socketPath) missed \(missed) records while it was away (the local log has them)"
                        )
                    }
                    continue
                }
                if socket >= 0 { close(socket) }
                socket = -1
                if Date().timeIntervalSince(lastComplaint) > 60 {
                    lastComplaint = Date()
                    report(
                        "cannot forward audit records to \(socketPath): \(String(cString: strerror(errno))); retrying"
                    )
                }
                if !outbox.stopping { try? await Task.sleep(for: .milliseconds(200)) }
                if outbox.stopping {
                    outbox.endRun()
                    break
                }
            }
            if outbox.stopping && socket >= 0 {
                close(socket)
                socket = -1
            }
        }

        /// The datagram for one record.
        func datagram(for line: [UInt8]) -> [UInt8] {
            switch destination {
            case .journal:
                // Native protocol: KEY=VALUE lines; a record never holds a raw newline (JSON escapes it).
                let (seq, hash) = AuditForwarder.seqAndHash(line)
                var out = Array(
                    "SYSLOG_IDENTIFIER=ukeyd\nPRIORITY=6\nUKEY_SEQ=\(seq)\nUKEY_HASH=\(hash)\nMESSAGE=".utf8
                )
                out += line
                out.append(0x0A)
                return out
            case .syslog:
                // RFC 5424: <authpriv.info>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG
                let header = "<86>1 \(formatter.string(from: Date())) \(hostname) ukeyd \(pid) audit - "
                return Array(header.utf8) + line
            }
        }
    }
}
