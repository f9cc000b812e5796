import Foundation
import UkeyConcurrency
import UkeyCore
import UkeyPolicy
#if canImport(Glibc)
import Glibc
#endif

/// Hashes a file for `Boot.Measure(path:)`, off the cooperative thread pool and within a deadline.
///
/// A path a caller names is opened with the caller's own rights: on a thread whose filesystem uid
/// and gid are the peer's (`setfsuid`/`setfsgid` act on the calling thread alone, and a non-zero
/// fsuid drops the capabilities that let root read anything), without following a symlink in the
/// last component. So a hypervisor-role peer that is not root learns nothing it could not read
/// itself: an unreadable file and a missing one in a directory it cannot search look the same.
/// ukeyd drops its own supplementary groups at start, so only the peer's primary group applies: a
/// file the peer reaches only through a supplementary group is refused (send its digest instead).
///
/// Why not SCM_RIGHTS (the caller passing an open descriptor): generic varlink clients (python
/// varlink, varlinkctl) cannot send one, and `path` is in the API contract; the peer's own rights
/// give the same guarantee for them.
public enum PeerFileHasher {
    /// Hashing a path gives up after this long (a 1 GiB image takes about a second here).
    static let deadline: Duration = .seconds(300)
    private static let hashing = OffPool(label: "ukey.hash")

    /// The policy's own file hint: the daemon's to read, following symlinks (as the policy says).
    static func digest(
        ofPolicyFile path: String,
        using algorithm: HashAlgorithm
    ) async throws(FileDigester.Failure) -> Digest {
        try await run { () throws(FileDigester.Failure) in
            try FileDigester.digest(ofFileAt: path, using: algorithm, deadline: .now + deadline)
        }
    }

    /// A caller's path, opened with the caller's rights (root's own when the caller is root).
    static func digest(
        ofCallerPath path: String,
        uid: UInt32,
        gid: UInt32,
        using algorithm: HashAlgorithm
    ) async throws(FileDigester.Failure) -> Digest {
        try await run { () throws(FileDigester.Failure) in
            let fd = try openAsPeer(path, uid: uid, gid: gid)
            defer { close(fd) }
            return try FileDigester.digest(ofDescriptor: fd, path: path, using: algorithm, deadline: .now + deadline)
        }
    }

    /// What `digestAndIdentity` found.
    struct Hashed: Sendable {
        let digest: Digest
        /// The descriptor's identity, the same before and after the read.
        let identity: MeasurementCache.FileIdentity
        /// Whether the digest came from `cache` (the file unchanged since it was hashed this boot).
        let cached: Bool
    }

    /// A caller's path, as `digest(ofCallerPath:)`, with the identity of the descriptor hashed
    /// (taken before and after the read; a file that changed meanwhile is refused), for the open
    /// guard's pin. With `cache`, a file hashed before in this boot and unchanged since (by its
    /// identity) is not read again; a file hashed now is remembered there.
    static func digestAndIdentity(
        ofCallerPath path: String,
        uid: UInt32,
        gid: UInt32,
        using algorithm: HashAlgorithm,
        cache: MeasurementCache? = nil
    ) async throws(FileDigester.Failure) -> Hashed {
        try await run { () throws(FileDigester.Failure) -> Hashed in
            let fd = try openAsPeer(path, uid: uid, gid: gid)
            defer { close(fd) }
            guard let before = MeasurementCache.FileIdentity(descriptor: fd) else {
                throw FileDigester.Failure(path: path, reason: String(cString: strerror(errno)))
            }
            if let digest = cache?.digest(of: before, algorithm: algorithm, descriptor: fd) {
                return Hashed(digest: digest, identity: before, cached: true)
            }
            let hashStart = MeasurementCache.now()
            let digest = try FileDigester.digest(
                ofDescriptor: fd,
                path: path,
                using: algorithm,
                deadline: .now + deadline
            )
            guard let after = MeasurementCache.FileIdentity(descriptor: fd), after.pin == before.pin else {
                throw FileDigester.Failure(
                    path: path,
                    reason: "changed while ukeyd was hashing it; not measured"
                )
            }
            // Its status changed meanwhile (a chown): the digest stands, but only a file
            // whose whole identity held through the read is taken for its content later.
            if after == before {
                cache?.remember(
                    before,
                    algorithm: algorithm,
                    digest: digest,
                    descriptor: fd,
                    hashStart: hashStart
                )
            }
            return Hashed(digest: digest, identity: before, cached: false)
        }
    }

    /// glibc's setfsuid and setfsgid (<sys/fsuid.h>, which Swift's Glibc module leaves out).
    private typealias SetFSID = @convention(c) (UInt32) -> Int32
    private static let fsCalls: (uid: SetFSID, gid: SetFSID)? = {
        guard let uid = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setfsuid"),
            let gid = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setfsgid")
        else { return nil }
        return (unsafeBitCast(uid, to: SetFSID.self), unsafeBitCast(gid, to: SetFSID.self))
    }()

    private static func openAsPeer(_ path: String, uid: UInt32, gid: UInt32) throws(FileDigester.Failure) -> Int32 {
        let flags = FileDigester.openFlags | O_NOFOLLOW
        guard uid != 0 else {
            let fd = open(path, flags)
            guard fd >= 0 else { throw FileDigester.Failure(path: path, reason: String(cString: strerror(errno))) }
            return fd
        }
        guard let (setfsuid, setfsgid) = fsCalls else {
            throw FileDigester.Failure(
                path: path,
                reason: "cannot take the caller's file rights (no setfsuid); not opened"
            )
        }
        let savedGID = setfsgid(gid)
        let savedUID = setfsuid(uid)
        defer {
            _ = setfsuid(UInt32(bitPattern: savedUID))
            _ = setfsgid(UInt32(bitPattern: savedGID))
        }
        // setfsuid reports the previous value only; asking again confirms the change took.
        guard setfsuid(uid) == Int32(bitPattern: uid), setfsgid(gid) == Int32(bitPattern: gid) else {
            throw FileDigester.Failure(path: path, reason: "cannot take the caller's file rights; not opened")
        }
        let fd = open(path, flags)
        let error = errno
        guard fd >= 0 else {
            let reason = error == ELOOP ? "is a symbolic link; name the file itself" : String(cString: strerror(error))
            throw FileDigester.Failure(path: path, reason: reason)
        }
        return fd
    }

    /// Runs `work` on the hashing queue, off the cooperative pool: a large file's read must not
    /// hold a thread the daemon's tasks need.
    private static func run<T: Sendable>(
        _ work: @escaping @Sendable () throws(FileDigester.Failure) -> T
    ) async throws(FileDigester.Failure) -> T {
        try await hashing.run(work)
    }

    /// Drops ukeyd's supplementary groups (it is root and needs none), so that a peer's file is
    /// judged by the peer's uid and primary group alone. Called once at start.
    public static func dropSupplementaryGroups() {
        if getuid() == 0 { _ = setgroups(0, nil) }
    }
}
