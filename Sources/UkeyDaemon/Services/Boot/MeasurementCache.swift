import Glibc
import Synchronization
import UkeyCore

/// The digests of read-only files measured in this host boot (parent OS images, kernels,
/// firmware), reused while the file is provably the one hashed: twenty desktops over one 20 GiB
/// parent then cost one read of it, not twenty. The measurement is still made and recorded (the
/// register extended, the event logged, the audit record written, `cached: true` in both); only
/// the hashing is skipped.
///
/// What it trusts: a regular file whose identity (device, inode, size, mtime, ctime to the
/// nanosecond, and the inode generation where the file system keeps one) is what it was when
/// hashed has the content it had, provided nobody could write it without the kernel moving its
/// times. So an entry is made, and used, only when
/// - the file is a regular file (a block device's times do not move when another node of the same
///   device is written);
/// - nobody has it open for writing, or mapped writable (ukeyd takes a read lease, which the
///   kernel refuses while a writer exists): a later change must then open it for writing and
///   write, and every write(2) and the first write fault of a fresh mapping move mtime and ctime,
///   which nobody can set back (setting mtime back moves ctime);
/// - its ctime is older than the hash by more than the file system's timestamp grain (2 s where
///   the times carry no nanoseconds, 0.1 s otherwise), so a write in the same tick as the hash
///   cannot hide behind an unchanged timestamp.
/// A root process writing the block device under the file system bypasses all of it, as it
/// bypasses any measurement by path between hash and use. The statx change cookie
/// (STATX_CHANGE_COOKIE) would say the same more directly, but Linux keeps it for NFS inside the
/// kernel and does not offer it to user space.
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
        let regular: Bool

        init?(descriptor: Int32) {
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = info.st_mtim
            changed = info.st_ctim
            regular = info.st_mode & S_IFMT == S_IFREG
            var version: Int = 0
            // FS_IOC_GETVERSION = _IOR('v', 1, long)
            generation = ioctl(descriptor, 0x8008_7601, &version) == 0 ? version : nil
        }

        /// `device:inode:generation` (`-` without one): which file, even after its inode number
        /// is reused by a file made later (a new generation on the file systems that keep one).
        var file: String { "\(device):\(inode):\(generation.map(String.init) ?? "-")" }

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

    /// The digest hashed from the file `identity` names, if it is still exactly that file and
    /// nobody holds it open for writing (`descriptor`: the file, opened read-only).
    func digest(of identity: FileIdentity, algorithm: HashAlgorithm, descriptor: Int32) -> Digest? {
        guard enabled, identity.regular, Self.noWriter(descriptor) else { return nil }
        return entries.withLock { entries in
            guard let entry = entries[Key(device: identity.device, inode: identity.inode, algorithm: algorithm)],
                entry.identity == identity
            else { return nil }
            return entry.digest
        }
    }

    /// Remembers a digest hashed from `descriptor` (read-only), whose identity held through the
    /// read begun at `hashStart`; not when a writer holds the file, nor when its last change is
    /// too close to the hash for its timestamps to tell a later one.
    func remember(
        _ identity: FileIdentity,
        algorithm: HashAlgorithm,
        digest: Digest,
        descriptor: Int32,
        hashStart: timespec
    ) {
        guard enabled, identity.regular, !Self.tooRecent(identity, hashStart: hashStart), Self.noWriter(descriptor)
        else { return }
        entries.withLock { entries in
            if entries.count >= Self.maxEntries { entries.removeAll() }
            entries[Key(device: identity.device, inode: identity.inode, algorithm: algorithm)] = (identity, digest)
        }
    }

    /// Whether no one has the file open for writing or mapped writable: the kernel grants a read
    /// lease only then (F_SETLEASE, F_RDLCK; let go at once). Without the right to take leases
    /// (ukeyd not root), nothing is cached.
    static func noWriter(_ descriptor: Int32) -> Bool {
        let setLease: Int32 = 1024  // F_SETLEASE (F_LINUX_SPECIFIC_BASE)
        guard fcntl(descriptor, setLease, Int32(F_RDLCK)) == 0 else { return false }
        _ = fcntl(descriptor, setLease, Int32(F_UNLCK))
        return true
    }

    /// Whether the file's last change falls within a timestamp tick of the hash's start.
    static func tooRecent(_ identity: FileIdentity, hashStart: timespec) -> Bool {
        let coarse = identity.changed.tv_nsec == 0 && identity.modified.tv_nsec == 0
        let grain: Int = coarse ? 2_000_000_000 : 100_000_000
        let changed = identity.changed.tv_sec * 1_000_000_000 + identity.changed.tv_nsec
        let start = hashStart.tv_sec * 1_000_000_000 + hashStart.tv_nsec
        return changed > start - grain
    }

    /// The wall clock, as file times are kept.
    static func now() -> timespec {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return time
    }

    /// A new boot session: nothing measured before it is reused.
    func clear() {
        entries.withLock { $0.removeAll() }
    }
}
