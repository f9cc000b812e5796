import Foundation
import Glibc

/// Ways to run a program that no fanotify mark can cover, closed or named before the guard
/// says it is guarding:
/// - **memfd**: a program written to a `memfd_create` file and run with `fexecve` lives on the
///   kernel's internal tmpfs, which fanotify refuses to mark. `vm.memfd_noexec = 2` (Linux 6.3+)
///   makes every memfd non-executable; the guard sets it, and on a kernel without it refuses to
///   start unless told to accept the gap.
/// - **user namespaces**: an unprivileged user who can make a user namespace can mount a tmpfs
///   of its own, a new file system that did not exist when the guard marked the others, and
///   run anything from it. The guard cannot close this without breaking what needs user
///   namespaces, so it refuses to start while unprivileged users may make them, unless told to
///   accept the gap.
/// An accepted gap is said in the guard's log and in its start record in ukeyd's audit log.
public struct KernelGaps: Sendable {
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Where the kernel's settings are (a test points this at a directory of its own).
    public var procSys = "/proc/sys"

    public init() {}

    /// Closes what can be closed; returns the gaps accepted (`memfd-exec`, `user-namespaces`)
    /// and what was done, or throws the refusal that names the setting to change.
    public func close(
        allowMemfdExec: Bool,
        allowUserNamespaces: Bool
    ) throws(Refusal) -> (accepted: [String], notes: [String]) {
        var accepted: [String] = []
        var notes: [String] = []
        let memfd = "\(procSys)/vm/memfd_noexec"
        if let value = Self.read(memfd) {
            if value < 2 {
                if Self.write(memfd, "2") {
                    notes.append("set vm.memfd_noexec = 2 (was \(value)): no memfd can be run")
                } else if allowMemfdExec {
                    accepted.append("memfd-exec")
                } else {
                    throw Refusal(
                        description:
                            "cannot set vm.memfd_noexec to 2 (it is \(value)): a program written to a memfd and run with fexecve would run unseen; pass --allow-memfd-exec to guard anyway"
                    )
                }
            }
        } else if allowMemfdExec {
            accepted.append("memfd-exec")
        } else {
            throw Refusal(
                description:
                    "this kernel has no vm.memfd_noexec (Linux 6.3 added it): a program written to a memfd and run with fexecve would run unseen; pass --allow-memfd-exec to guard anyway"
            )
        }
        if let open = userNamespacesOpen() {
            guard allowUserNamespaces else {
                throw Refusal(
                    description:
                        "unprivileged users can make user namespaces here (\(open)): one can mount a tmpfs of its own, which no guard has marked, and run anything from it; set kernel.unprivileged_userns_clone = 0 or user.max_user_namespaces = 0, or pass --allow-user-namespaces to guard anyway"
                )
            }
            accepted.append("user-namespaces")
        }
        return (accepted, notes)
    }

    /// How unprivileged user namespaces are allowed, or nil when they are not.
    func userNamespacesOpen() -> String? {
        // Debian's and Ubuntu's switch, where the kernel has it, decides for unprivileged users.
        if let clone = Self.read("\(procSys)/kernel/unprivileged_userns_clone") {
            return clone == 0 ? nil : "kernel.unprivileged_userns_clone = \(clone)"
        }
        guard let count = Self.read("\(procSys)/user/max_user_namespaces") else { return nil }
        return count == 0 ? nil : "user.max_user_namespaces = \(count)"
    }

    static func read(_ path: String) -> Int? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func write(_ path: String, _ value: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        let bytes = Array(value.utf8)
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
            && read(path) == Int(value)
    }
}
