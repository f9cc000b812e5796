import Glibc

/// Whether anyone but root can put another file at a path by renaming a directory on the way:
/// the open guard watches the file's own directory, so a file swapped in there is caught, but a
/// directory above it renamed away and replaced would take QEMU's open somewhere no mark is. A
/// directory entry can be replaced by whoever may write its parent (in a sticky parent, only the
/// entry's owner or the parent's): so every directory on the way, and its parent, must leave that
/// to root. Symbolic links on the way are refused (one could be repointed), and so is a path with
/// `.`, `..` or `//` (the kernel names the file otherwise, and the pin would not match).
enum SecurePath {
    static func refusal(_ path: String) -> String? {
        guard path.hasPrefix("/"), !path.contains("//"), !path.hasSuffix("/") else {
            return "\(path) is not a plain absolute path"
        }
        let components = path.split(separator: "/").map(String.init)
        guard !components.contains("."), !components.contains("..") else { return "\(path) has . or .. in it" }
        var parent = "/"
        var parentInfo = stat()
        guard lstat("/", &parentInfo) == 0 else { return "cannot read /" }
        for component in components.dropLast() {
            let current = parent == "/" ? "/\(component)" : "\(parent)/\(component)"
            var info = stat()
            guard lstat(current, &info) == 0 else { return "\(current): \(String(cString: strerror(errno)))" }
            guard info.st_mode & S_IFMT == S_IFDIR else {
                return "\(current) is a symbolic link (or not a directory): one could repoint it after ukey measured"
            }
            if let why = replaceable(entry: info, in: parentInfo) {
                return "\(current) could be replaced after ukey measured: \(parent) \(why)"
            }
            parent = current
            parentInfo = info
        }
        return nil
    }

    /// Why someone other than root may rename an entry (owned as `entry` says) in a directory.
    static func replaceable(entry: stat, in directory: stat) -> String? {
        let others = directory.st_mode & (S_IWGRP | S_IWOTH) != 0
        guard directory.st_uid != 0 || others else { return nil }
        if directory.st_mode & S_ISVTX != 0 && directory.st_uid == 0 && entry.st_uid == 0 { return nil }
        return directory.st_uid != 0 ? "belongs to uid \(directory.st_uid)" : "is writable by its group or by others"
    }
}
