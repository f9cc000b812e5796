import Glibc

/// What the guard reads of the process behind a held open, through /proc (a pseudo file
/// system the guard never marks, so reading it cannot wait on the guard itself).
enum OpenerView {
    /// The process's executable, as the kernel names it; nil when the process is gone.
    static func executable(pid: Int32) -> String? {
        link("/proc/\(pid)/exe")
    }

    /// The process's arguments without argv[0], at most 64 KiB of them.
    static func arguments(pid: Int32) -> [String] {
        let fd = open("/proc/\(pid)/cmdline", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 65_536)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return [] }
        // Each argument ends with a NUL, so the last piece is empty.
        var parts = bytes[0..<count].split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        if parts.last == "" { parts.removeLast() }
        return Array(parts.dropFirst())
    }

    /// Whether `path` (relative to the process's working directory, or absolute: both through
    /// its own root) names the file `key`. stat, never open: an open here would be held too.
    static func names(pid: Int32, path: String, key: FileKey) -> Bool {
        let resolved = path.hasPrefix("/") ? "/proc/\(pid)/root\(path)" : "/proc/\(pid)/cwd/\(path)"
        var info = stat()
        guard stat(resolved, &info) == 0 else { return false }
        return UInt64(info.st_dev) == key.device && UInt64(info.st_ino) == key.inode
    }

    static func link(_ path: String) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(PATH_MAX) + 1) { buffer in
            let count = readlink(path, buffer.baseAddress!, buffer.count - 1)
            guard count > 0 else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress!, count: count), as: UTF8.self)
        }
    }
}
