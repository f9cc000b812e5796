#if canImport(Glibc)
import Glibc
#endif

/// The state directory holds the sealed store and its key: it must be the daemon's alone.
/// ukey refuses to use a directory or file that another user could read or write, and says which
/// path has which mode, rather than silently tightening it (the operator should know it happened).
public enum StatePermissions {
    /// Creates `directory` with mode 0700 if it is missing (parents are not created).
    public static func ensureDirectory(_ directory: String) throws(StoreError) {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw StoreError(.io, path: directory, "cannot create the state directory: \(errnoText())")
        }
        try checkDirectory(directory)
    }

    /// Refuses a directory that is not a directory, is not owned by us, or is open to group/other.
    public static func checkDirectory(_ directory: String) throws(StoreError) {
        var info = stat()
        guard lstat(directory, &info) == 0 else {
            throw StoreError(.notFound, path: directory, "cannot read the state directory: \(errnoText())")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw StoreError(.insecurePermissions, path: directory, "is not a directory (a symlink is not accepted)")
        }
        try checkOwnerAndMode(directory, info, want: 0o700)
    }

    /// The runtime directory holds the socket, so the socket's group must be able to traverse it
    /// (0710 with the socket group, as ukeyd makes it, or 0750, 0711); it must still be ours, and
    /// writable by no one else.
    public static func ensureRuntimeDirectory(_ directory: String) throws(StoreError) {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw StoreError(.io, path: directory, "cannot create the runtime directory: \(errnoText())")
        }
        var info = stat()
        guard lstat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw StoreError(.insecurePermissions, path: directory, "is not a directory (a symlink is not accepted)")
        }
        let mode = info.st_mode & 0o7777
        guard info.st_uid == geteuid() else {
            throw StoreError(
                .insecurePermissions,
                path: directory,
                "is owned by uid \(info.st_uid), not by the daemon's uid \(geteuid())"
            )
        }
        guard mode & 0o022 == 0 else {
            throw StoreError(
                .insecurePermissions,
                path: directory,
                "has permissions \(octal(mode)); others must not write to it (use 0750). Fix: chmod 0750 \(directory)"
            )
        }
    }

    /// Refuses a file that is not a regular file, is not ours, or is open to group/other.
    public static func checkFile(_ path: String) throws(StoreError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw StoreError(.notFound, path: path, "cannot read: \(errnoText())")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw StoreError(.insecurePermissions, path: path, "is not a regular file (a symlink is not accepted)")
        }
        try checkOwnerAndMode(path, info, want: 0o600)
    }

    private static func checkOwnerAndMode(_ path: String, _ info: stat, want: mode_t) throws(StoreError) {
        let mode = info.st_mode & 0o7777
        guard info.st_uid == geteuid() else {
            throw StoreError(
                .insecurePermissions,
                path: path,
                "is owned by uid \(info.st_uid), not by the daemon's uid \(geteuid()); ukey refuses to use it"
            )
        }
        guard mode & 0o077 == 0 else {
            throw StoreError(
                .insecurePermissions,
                path: path,
                "has permissions \(octal(mode)); ukey needs \(octal(want)) (owner only). Fix: chmod \(octal(want)) \(path)"
            )
        }
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
