#if canImport(Glibc)
import Glibc
#endif

/// Durable whole-file replacement: write a temporary file, fsync it, rename it over the target,
/// fsync the directory. A crash at any point leaves either the old file or the new one, never a
/// mix (the rename is atomic, and both fsyncs order the data before the name).
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(StoreError) {
        let directory = parentDirectory(of: path)
        let temporary = "\(path).tmp"
        // A leftover temporary file from a crash is garbage by construction; replace it.
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw StoreError(.io, path: temporary, "cannot create: \(errnoText())") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(temporary) }
        }
        // The umask may have narrowed the mode; never widen it, but make sure it is exactly `mode`.
        guard fchmod(fd, mode) == 0 else { throw StoreError(.io, path: temporary, "cannot chmod: \(errnoText())") }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError(.io, path: temporary, "cannot write: \(errnoText())")
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw StoreError(.io, path: temporary, "cannot fsync: \(errnoText())") }
        guard rename(temporary, path) == 0 else {
            throw StoreError(.io, path: path, "cannot rename into place: \(errnoText())")
        }
        ok = true
        try syncDirectory(directory)
    }

    /// Reads a whole file of at most `limit` bytes.
    public static func read(_ path: String, limit: Int) throws(StoreError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw StoreError(errno == ENOENT ? .notFound : .io, path: path, "cannot open: \(errnoText())")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError(.io, path: path, "cannot read: \(errnoText())")
            }
            if n == 0 { break }
            bytes += buffer[0..<n]
            guard bytes.count <= limit else {
                throw StoreError(.integrity, path: path, "integrity check failed: file is larger than \(limit) bytes")
            }
        }
        return bytes
    }

    static func syncDirectory(_ directory: String) throws(StoreError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(.io, path: directory, "cannot open to fsync: \(errnoText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StoreError(.io, path: directory, "cannot fsync: \(errnoText())") }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
