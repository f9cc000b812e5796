import Glibc
import Synchronization
import UkeyCore

/// The digests of read-only files measured in this host boot (parent OS images, kernels,
/// firmware), reused while the file is provably the one hashed: twenty desktops over one 20 GiB
/// parent then cost one read of it, not twenty. The measurement is still made and recorded (the
/// register extended, the event logged, the audit record written, `cached: true` in both); only
/// the hashing is skipped.
///
/// What it trusts: a file whose identity (device, inode, size, mtime, ctime to the nanosecond,
/// and the inode generation where the file system keeps one) is what it was when hashed has the
/// content it had. Every change made through the file system moves ctime, and ctime cannot be
/// set back (utimensat sets mtime and atime, and moves ctime itself); so a parent changed in
/// place, its mtime put back, is hashed again. A root process writing the block device under the
/// file system bypasses all of it, as it bypasses any measurement by path between hash and use.
/// The statx change cookie (STATX_CHANGE_COOKIE) would say the same more directly, but Linux
/// keeps it for NFS inside the kernel and does not offer it to user space.
///
/// Writable components (a VM's own disk) are never taken from here: their seal is checked by a
/// full hash at every start. `[boot] reuse-measurements = false` turns the cache off.
final class MeasurementCache: Sendable {
    /// Who the file is, as far as its content could have changed.
    struct FileIdentity: Sendable, Hashable, CustomStringConvertible {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let modified: timespec
        let changed: timespec
        /// FS_IOC_GETVERSION, where the file system has it (ext4: a new number for a reused inode).
        let generation: Int?

        init?(descriptor: Int32) {
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = info.st_mtim
            changed = info.st_ctim
            var version: Int = 0
            // FS_IOC_GETVERSION = _IOR('v', 1, long)
            generation = ioctl(descriptor, 0x8008_7601, &version) == 0 ? version : nil
        }

        /// What the open guard pins (not ctime: libvirt's chown of an image to the QEMU user
        /// moves it between the measurement and QEMU's open).
        var pin: IdentityPins.Identity {
            IdentityPins.Identity(device: device, inode: inode, size: size, modified: modified)
        }

        var description: String { "inode \(inode) on device \(device), \(size) bytes" }

        static func == (a: Self, b: Self) -> Bool {
            a.device == b.device && a.inode == b.inode && a.size == b.size && a.generation == b.generation
                && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
                && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(device)
            hasher.combine(inode)
        }
    }

    private struct Key: Hashable {
        let device: UInt64
        let inode: UInt64
        let algorithm: HashAlgorithm
    }

    /// At most this many files are remembered; past it the cache starts again (a host measures
    /// far fewer distinct read-only files in one boot).
    static let maxEntries = 4096
    let enabled: Bool
    private let entries = Mutex<[Key: (identity: FileIdentity, digest: Digest)]>([:])

    init(enabled: Bool) {
        self.enabled = enabled
    }

    /// The digest hashed from the file `identity` names, if it is still exactly that file.
    func digest(of identity: FileIdentity, algorithm: HashAlgorithm) -> Digest? {
        guard enabled else { return nil }
        return entries.withLock { entries in
            guard let entry = entries[Key(device: identity.device, inode: identity.inode, algorithm: algorithm)], entry.identity == identity else { return nil }
            return entry.digest
        }
    }

    func remember(_ identity: FileIdentity, algorithm: HashAlgorithm, digest: Digest) {
        guard enabled else { return }
        entries.withLock { entries in
            if entries.count >= Self.maxEntries { entries.removeAll() }
            entries[Key(device: identity.device, inode: identity.inode, algorithm: algorithm)] = (identity, digest)
        }
    }

    /// A new boot session: nothing measured before it is reused.
    func clear() {
        entries.withLock { $0.removeAll() }
    }
}
