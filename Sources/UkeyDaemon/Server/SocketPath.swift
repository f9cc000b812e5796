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
            guard let gid = RolePolicy.groupID(group) else {
                throw Failure(description: "socket group '\(group)' does not exist")
            }
            guard chown(path, uid_t.max, gid) == 0 else {
                throw Failure(description: "cannot give \(path) to group \(group): \(String(cString: strerror(errno)))")
            }
        }
        guard chmod(path, mode) == 0 else {
            throw Failure(description: "cannot chmod \(path): \(String(cString: strerror(errno)))")
        }
        guard mode & 0o002 == 0 else {
            throw Failure(description: "refusing a world-writable socket mode \(String(mode, radix: 8))")
        }
    }

    /// Lets the socket's group reach the socket: its directory (ukeyd's own runtime directory)
    /// becomes `root:GROUP 0710`, so members may pass through it to the socket and nobody else
    /// may, and no one but ukeyd may list or change it. A directory ukeyd does not own is left
    /// alone (and said so): it is not ukeyd's to open up.
    static func shareDirectory(of socketPath: String, group: String?) throws -> String? {
        guard let group else { return nil }
        let directory = socketPath.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(
            separator: "/"
        )
        guard !directory.isEmpty else { return nil }
        guard let gid = RolePolicy.groupID(group) else {
            throw Failure(description: "socket group '\(group)' does not exist")
        }
        var info = stat()
        guard lstat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw Failure(description: "the socket's directory \(directory) is not a directory")
        }
        guard info.st_uid == geteuid() else {
            return
                "the socket's directory \(directory) belongs to uid \(info.st_uid); left as it is (members of \(group) need to pass through it)"
        }
        guard chown(directory, uid_t.max, gid) == 0, chmod(directory, 0o710) == 0 else {
            throw Failure(
                description:
                    "cannot give \(directory) to group \(group) with mode 0710: \(String(cString: strerror(errno)))"
            )
        }
        return nil
    }
}
