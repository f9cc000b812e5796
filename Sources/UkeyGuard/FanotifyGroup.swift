import CFanotify
import Glibc

/// A fanotify group of class FAN_CLASS_CONTENT that receives FAN_OPEN_EXEC_PERM events: the
/// kernel holds each exec until the group answers it (FAN_ALLOW or FAN_DENY). If the process
/// holding the group dies, the kernel allows everything again.
public final class FanotifyGroup {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// One held exec: the file opened for the guard (read it, never by path), and who execs it.
    public struct Event: Sendable {
        public let fd: Int32
        public let pid: Int32
    }

    public let descriptor: Int32
    /// Whether answers carry FAN_AUDIT (the kernel's audit log records them), where supported.
    public let audits: Bool
    /// Where events are read to: allocated once, since an exec waits while the guard reads.
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)

    public init() throws(Failure) {
        let flags = UInt32(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE)
        // O_LARGEFILE is implied on 64-bit kernels, the only ones ukey builds for.
        let eventFlags = UInt32(O_RDONLY | O_CLOEXEC)
        var fd = fanotify_init(flags | UInt32(FAN_ENABLE_AUDIT), eventFlags)
        var audits = true
        if fd < 0 && (errno == EINVAL || errno == EPERM) {
            // A kernel without audit support (or without permission to use it): plain answers.
            fd = fanotify_init(flags, eventFlags)
            audits = false
        }
        guard fd >= 0 else {
            throw Failure(description: "fanotify_init: \(String(cString: strerror(errno))) (ukey-guard needs CAP_SYS_ADMIN and a kernel with fanotify permission events)")
        }
        descriptor = fd
        self.audits = audits
    }

    deinit {
        close(descriptor)
        buffer.deallocate()
    }

    /// Holds every exec on the mount that holds `path`.
    public func guardMount(_ path: String) throws(Failure) {
        let flags = UInt32(FAN_MARK_ADD | FAN_MARK_MOUNT)
        guard fanotify_mark(descriptor, flags, UInt64(FAN_OPEN_EXEC_PERM), AT_FDCWD, path) == 0 else {
            throw Failure(description: "fanotify_mark \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// What a wait ended with.
    public enum Wake: Sendable {
        /// Held execs were read into the caller's array.
        case events
        /// The stop descriptor became readable.
        case stop
        /// Nothing came within the timeout (or a signal interrupted the wait).
        case timeout
    }

    /// Waits up to `timeout` milliseconds for held execs or for `stop` (a signalfd) to become
    /// readable; held execs are read into `events`, which keeps its storage from call to call.
    /// One `poll` and one `read` a wake-up: an exec waits while this runs.
    public func wait(timeout: Int32, stop: Int32, into events: inout [Event]) throws(Failure) -> Wake {
        events.removeAll(keepingCapacity: true)
        var pollers = (
            pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stop, events: Int16(POLLIN), revents: 0)
        )
        let ready = withUnsafeMutableBytes(of: &pollers) { raw in
            poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, timeout)
        }
        if ready < 0 {
            if errno == EINTR { return .timeout }
            throw Failure(description: "poll: \(String(cString: strerror(errno)))")
        }
        // Held execs first: a stop answers what is already held before it ends.
        if pollers.0.revents & Int16(POLLIN) != 0 {
            try read(into: &events)
            return .events
        }
        if pollers.1.revents != 0 { return .stop }
        return .timeout
    }

    private func read(into events: inout [Event]) throws(Failure) {
        let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
        if count < 0 {
            if errno == EINTR || errno == EAGAIN { return }
            throw Failure(description: "reading fanotify events: \(String(cString: strerror(errno)))")
        }
        var offset = 0
        let headerSize = MemoryLayout<fanotify_event_metadata>.size
        while offset + headerSize <= count {
            let metadata = buffer.loadUnaligned(fromByteOffset: offset, as: fanotify_event_metadata.self)
            guard metadata.vers == FANOTIFY_METADATA_VERSION, metadata.event_len >= headerSize else {
                throw Failure(description: "fanotify sent metadata version \(metadata.vers); ukey-guard reads version \(FANOTIFY_METADATA_VERSION)")
            }
            if metadata.fd >= 0 {
                if metadata.mask & UInt64(FAN_OPEN_EXEC_PERM) != 0 {
                    events.append(Event(fd: metadata.fd, pid: metadata.pid))
                } else {
                    close(metadata.fd)
                }
            }
            offset += Int(metadata.event_len)
        }
    }

    /// Answers a held exec and closes its file.
    public func answer(_ event: Event, allow: Bool) {
        var response = fanotify_response(fd: event.fd, response: UInt32(allow ? FAN_ALLOW : FAN_DENY) | (audits ? UInt32(FAN_AUDIT) : 0))
        _ = withUnsafeBytes(of: &response) { write(descriptor, $0.baseAddress, $0.count) }
        close(event.fd)
    }
}
