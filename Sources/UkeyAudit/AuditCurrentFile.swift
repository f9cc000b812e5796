import Glibc
import Synchronization

/// The file the log appends to, `audit.log`, open. Only the writer writes it and only a rotation
/// replaces it; readers take a duplicate descriptor, so a replacement never closes one under them.
final class AuditCurrentFile: Sendable {
    struct Handle: Sendable {
        var fd: Int32
        /// Which file this is (1, 2, ... as rotations happen), so a reader's cursor into an
        /// earlier one is known as such.
        var generation: UInt64
        /// Its first record.
        var firstSeq: UInt64
    }

    private let handle: Mutex<Handle>

    init(fd: Int32, firstSeq: UInt64) {
        handle = Mutex(Handle(fd: fd, generation: 1, firstSeq: firstSeq))
    }

    deinit { handle.withLock { _ = Glibc.close($0.fd) } }

    /// For the writer, which alone replaces it.
    var fd: Int32 { handle.withLock { $0.fd } }

    /// A duplicate of the descriptor (the reader closes it), or nil with `errno` set.
    func duplicate() -> Handle? {
        let copy = handle.withLock { handle in
            Handle(fd: dup(handle.fd), generation: handle.generation, firstSeq: handle.firstSeq)
        }
        return copy.fd >= 0 ? copy : nil
    }

    /// Puts the rotation's new file in place, and closes the old one.
    func replace(with fd: Int32, firstSeq: UInt64) {
        let old = handle.withLock { handle in
            defer { handle = Handle(fd: fd, generation: handle.generation + 1, firstSeq: firstSeq) }
            return handle.fd
        }
        Glibc.close(old)
    }
}

extension AuditFileIO {
    /// Writes all of `bytes` to `fd` and syncs it; the error names `file` and the cause.
    func append(_ bytes: [UInt8], to fd: Int32, file: String) throws(AuditError) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw AuditError(.io, "cannot write \(file): \(String(cString: strerror(errno)))") }
            written += n
        }
        guard sync(fd) == 0 else { throw AuditError(.io, "cannot sync \(file): \(String(cString: strerror(errno)))") }
    }
}
