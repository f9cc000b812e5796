import Glibc

/// Every file system of this mount namespace that can hold a program, guarded, and those mounted
/// later guarded as they appear: the kernel signals a change of the mount table on an open
/// /proc/self/mountinfo (POLLPRI), and the guard's loop then marks what is new. Between a mount
/// and its mark a program on the new file system runs unseen; docs/threat-model.md says so.
public final class MountWatch {
    public let descriptor: Int32
    let opens: Bool
    /// Devices (`major:minor`) already marked.
    private var guarded = Set<String>()

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public init(opens: Bool) throws(Failure) {
        let fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Failure(description: "cannot read /proc/self/mountinfo: \(String(cString: strerror(errno)))")
        }
        descriptor = fd
        self.opens = opens
    }

    deinit { close(descriptor) }

    /// Marks each file system not yet guarded; returns the mount points marked and those that
    /// could not be (with why).
    public func guardNew(_ group: FanotifyGroup) -> (marked: [String], failed: [String]) {
        let table = MountTable(parsing: readTable())
        var marked: [String] = []
        var failed: [String] = []
        for mount in table.programFileSystems where !guarded.contains(mount.device) {
            // The first mount of the file system that its mount point still reaches (one may be
            // covered by a later mount on top of it).
            guard
                let reachable = table.mounts.first(where: {
                    $0.device == mount.device && Self.device(of: $0.mountPoint) == mount.device
                })
            else {
                failed.append(
                    "\(mount.mountPoint) (\(mount.type)): covered by another mount; none of its mount points reaches it"
                )
                continue
            }
            do {
                try group.guardFileSystem(reachable.mountPoint, opens: opens)
                guarded.insert(mount.device)
                marked.append("\(reachable.mountPoint) (\(mount.type))")
            } catch {
                failed.append("\(reachable.mountPoint) (\(mount.type)): \(error)")
            }
        }
        return (marked, failed)
    }

    /// The loop's answer to a change of the mount table.
    func changed(_ group: FanotifyGroup, _ log: (String) -> Void) {
        let (marked, failed) = guardNew(group)
        if !marked.isEmpty { log("mounted since: now guarding \(marked.joined(separator: ", "))") }
        for failure in failed { log("CANNOT GUARD \(failure): programs there run unseen") }
    }

    private func readTable() -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var offset: off_t = 0
        while bytes.count < 64 << 20 {
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
            offset += off_t(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `major:minor` of the file system a path is on (stat, never open: this runs while the
    /// guard holds opens).
    static func device(of path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let device = UInt64(info.st_dev)
        // glibc's encoding of dev_t (gnu_dev_major/minor, which Swift does not import).
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
        let minor = (device & 0xFF) | ((device >> 12) & ~UInt64(0xFF))
        return "\(major):\(minor)"
    }
}
