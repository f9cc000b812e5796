import Glibc

/// What identifies a file's contents for the cache: the same device, inode, size, modification
/// and change times mean the same bytes (a write changes mtime, and any metadata change ctime).
public struct FileIdentity: Hashable, Sendable {
    public let device: UInt64
    public let inode: UInt64
    public let size: Int64
    public let modified: timespec
    public let changed: timespec
    /// How many names the file has: with more than one, a decision made under one name is not
    /// one made under another (the whitelist allows a path with a digest), so the guard checks
    /// the name again. Not part of the identity: a new link moves ctime anyway.
    public let links: UInt64

    public init?(descriptor: Int32) {
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = info.st_mtim
        changed = info.st_ctim
        links = UInt64(info.st_nlink)
    }

    public init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        self.init(descriptor: fd)
    }

    /// The same file, whatever its times (for the guard's own files).
    public var file: FileKey { FileKey(device: device, inode: inode) }

    public static func == (a: FileIdentity, b: FileIdentity) -> Bool {
        a.device == b.device && a.inode == b.inode && a.size == b.size
            && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
            && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(device)
        hasher.combine(inode)
        hasher.combine(size)
        hasher.combine(modified.tv_nsec)
        hasher.combine(changed.tv_nsec)
    }
}

/// A file by device and inode.
public struct FileKey: Hashable, Sendable {
    public let device: UInt64
    public let inode: UInt64
}
