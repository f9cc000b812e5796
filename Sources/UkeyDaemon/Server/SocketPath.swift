#if canImport(Glibc)
import Glibc
#endif

/// The socket file's life: a stale socket from a previous run is removed only if it is a socket
/// (never a file someone pointed the path at), and a new one gets an explicit mode and group.
enum SocketPath {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func removeStale(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw Failure(description: "\(path) exists and is not a socket; refusing to remove it")
        }
        unlink(path)
    }

    static func secure(_ path: String, mode: mode_t, group: String?) throws {
        if let group {
            guard let gid = RolePolicy.groupID(group) else { throw Failure(description: "socket group '\(group)' does not exist") }
            guard chown(path, uid_t.max, gid) == 0 else {
                throw Failure(description: "cannot give \(path) to group \(group): \(String(cString: strerror(errno)))")
            }
        }
        guard chmod(path, mode) == 0 else { throw Failure(description: "cannot chmod \(path): \(String(cString: strerror(errno)))") }
        guard mode & 0o002 == 0 else { throw Failure(description: "refusing a world-writable socket mode \(String(mode, radix: 8))") }
    }
}
