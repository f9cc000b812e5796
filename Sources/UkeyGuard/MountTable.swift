/// The file systems mounted in this mount namespace, read from `/proc/self/mountinfo`
/// (proc(5): "mount ID, parent ID, major:minor, root, mount point, options, optional fields...,
/// '-', file system type, source, super options"). The guard marks each file system that can
/// hold a program once, whichever of its mounts it is found through.
public struct MountTable: Sendable, Equatable {
    public struct Mount: Sendable, Equatable {
        /// `major:minor` of the file system: the same for every mount of it (st_dev).
        public var device: String
        public var mountPoint: String
        public var type: String
    }

    public var mounts: [Mount]

    /// At most this many lines: a mount table is untrusted input too (a user namespace can
    /// mount thousands of tmpfs), and the guard must not spend without bound reading it.
    public static let maxMounts = 100_000

    public init(mounts: [Mount]) {
        self.mounts = mounts
    }

    /// Parses mountinfo's text; a line that does not have the format is skipped (the kernel
    /// writes them, so none is expected), and past `maxMounts` the rest is ignored.
    public init(parsing text: String) {
        var mounts: [Mount] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true).prefix(Self.maxMounts) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count >= 10, let dash = fields.firstIndex(of: "-"), dash >= 6, dash + 2 < fields.count else {
                continue
            }
            mounts.append(
                Mount(device: String(fields[2]), mountPoint: Self.unescape(fields[4]), type: String(fields[dash + 1]))
            )
        }
        self.mounts = mounts
    }

    /// File systems that hold no program anyone can write or run: the kernel's views of itself.
    /// Everything else (ext4, xfs, btrfs, tmpfs, /dev/shm, overlay, fuse, vfat...) is guarded.
    public static let pseudoTypes: Set<String> = [
        "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs", "securityfs", "pstore", "bpf",
        "configfs", "fusectl", "binfmt_misc", "autofs", "efivarfs", "nsfs", "rpc_pipefs", "selinuxfs", "hugetlbfs",
    ]

    /// One mount of each file system that can hold programs, in the table's order.
    public var programFileSystems: [Mount] {
        var seen = Set<String>()
        return mounts.filter { !Self.pseudoTypes.contains($0.type) && seen.insert($0.device).inserted }
    }

    /// mountinfo writes space, tab, newline and backslash in a path as `\ooo` octal escapes.
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var rest = Array(field.utf8)[...]
        while let byte = rest.popFirst() {
            if byte == UInt8(ascii: "\\"), rest.count >= 3, rest.prefix(3).allSatisfy({ (48...55).contains($0) }) {
                let digits = Array(rest.prefix(3)).map { Int($0 - 48) }
                let value = digits[0] * 64 + digits[1] * 8 + digits[2]
                if value <= 255 {
                    bytes.append(UInt8(value))
                    rest = rest.dropFirst(3)
                    continue
                }
            }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
