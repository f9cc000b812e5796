import CFanotify
import Glibc

/// A fanotify group of class FAN_CLASS_CONTENT that receives FAN_OPEN_EXEC_PERM events (and, where
/// the guard also judges what loaders and interpreters read, FAN_OPEN_PERM): the kernel holds
/// each exec or open until the group answers it (FAN_ALLOW or FAN_DENY). If the process holding
/// the group dies, the kernel allows everything again.
///
/// Marks are on file systems (FAN_MARK_FILESYSTEM), never on mounts: a mount mark covers one
/// mount of a file system, and `unshare -m` (or a bind mount) gives a process another mount of
/// the same files that no mark covers. A file system mark covers its files through every mount.
public final class FanotifyGroup {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// One held exec or open: the file opened for the guard (read it, never by path), and who
    /// execs or opens it.
    public struct Event: Sendable {
        public let fd: Int32
        public let pid: Int32
        /// An exec (FAN_OPEN_EXEC_PERM); otherwise a plain open (FAN_OPEN_PERM). An exec is held
        /// twice: first as an exec, then, once allowed, as an open by the same process.
        public let isExec: Bool
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
            throw Failure(
                description:
                    "fanotify_init: \(String(cString: strerror(errno))) (ukey-guard needs CAP_SYS_ADMIN and a kernel with fanotify permission events)"
            )
        }
        descriptor = fd
        self.audits = audits
    }

    deinit {
        close(descriptor)
        buffer.deallocate()
    }

    /// Holds every exec (and, with `opens`, every open) of a file on the file system that holds
    /// `path`, through whichever mount of it, in whichever mount namespace.
    public func guardFileSystem(_ path: String, opens: Bool) throws(Failure) {
        let flags = UInt32(FAN_MARK_ADD | FAN_MARK_FILESYSTEM)
        let mask = UInt64(FAN_OPEN_EXEC_PERM) | (opens ? UInt64(FAN_OPEN_PERM) : 0)
        guard fanotify_mark(descriptor, flags, mask, AT_FDCWD, path) == 0 else {
            throw Failure(description: "fanotify_mark (file system) \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Lets the opens of the file behind a held exec through without an event, until the file is
    /// modified (the kernel then drops the ignore mark) or `forgetIgnoredOpens` (the decision
    /// state moved): the file's exec was allowed, and what a runtime linker or an interpreter would
    /// get for it is that same decision. So a warm exec costs one event, not two (the kernel holds
    /// an exec's open after the exec itself).
    public func ignoreOpens(of event: Event) {
        _ = fanotify_mark(
            descriptor,
            UInt32(FAN_MARK_ADD | FAN_MARK_IGNORED_MASK),
            UInt64(FAN_OPEN_PERM),
            event.fd,
            nil
        )
    }

    /// Drops every ignore mark (inode marks; the file system marks stay).
    public func forgetIgnoredOpens() {
        _ = fanotify_mark(descriptor, UInt32(FAN_MARK_FLUSH), 0, AT_FDCWD, nil)
    }

    /// What a wait ended with.
    public enum Wake: Sendable {
        /// Held execs or opens were read into the caller's array.
        case events
        /// The stop descriptor became readable.
        case stop
        /// The mount table changed (the watched mountinfo descriptor signalled).
        case mountsChanged
        /// Nothing came within the timeout (or a signal interrupted the wait).
        case timeout
    }

    /// Waits up to `timeout` milliseconds for held events, for `stop` (a signalfd) to become
    /// readable, or for `mounts` (an open /proc/self/mountinfo, or -1) to signal a change of the
    /// mount table; held events are read into `events`, which keeps its storage from call to
    /// call. One `poll` and one `read` a wake-up: an exec waits while this runs.
    public func wait(
        timeout: Int32,
        stop: Int32,
        mounts: Int32 = -1,
        into events: inout [Event]
    ) throws(Failure) -> Wake {
        events.removeAll(keepingCapacity: true)
        var pollers = (
            pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stop, events: Int16(POLLIN), revents: 0),
            pollfd(fd: mounts, events: Int16(POLLPRI), revents: 0)
        )
        let ready = withUnsafeMutableBytes(of: &pollers) { raw in
            poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), mounts >= 0 ? 3 : 2, timeout)
        }
        if ready < 0 {
            if errno == EINTR { return .timeout }
            throw Failure(description: "poll: \(String(cString: strerror(errno)))")
        }
        // Held events first: a stop answers what is already held before it ends.
        if pollers.0.revents & Int16(POLLIN) != 0 {
            try read(into: &events)
            return .events
        }
        if pollers.1.revents != 0 { return .stop }
        if mounts >= 0, pollers.2.revents & Int16(POLLPRI | POLLERR) != 0 { return .mountsChanged }
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
                throw Failure(
                    description:
                        "fanotify sent metadata version \(metadata.vers); ukey-guard reads version \(FANOTIFY_METADATA_VERSION)"
                )
            }
            if metadata.fd >= 0 {
                if metadata.mask & UInt64(FAN_OPEN_EXEC_PERM) != 0 {
                    events.append(Event(fd: metadata.fd, pid: metadata.pid, isExec: true))
                } else if metadata.mask & UInt64(FAN_OPEN_PERM) != 0 {
                    events.append(Event(fd: metadata.fd, pid: metadata.pid, isExec: false))
                } else {
                    close(metadata.fd)
                }
            }
            offset += Int(metadata.event_len)
        }
    }

    /// Answers a held exec or open and closes its file.
    public func answer(_ event: Event, allow: Bool) {
        var response = fanotify_response(
            fd: event.fd,
            response: UInt32(allow ? FAN_ALLOW : FAN_DENY) | (audits ? UInt32(FAN_AUDIT) : 0)
        )
        _ = withUnsafeBytes(of: &response) { write(descriptor, $0.baseAddress, $0.count) }
        close(event.fd)
    }
}
