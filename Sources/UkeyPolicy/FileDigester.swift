#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import UkeyCore

/// Hashes a file in fixed-size chunks, so that measuring a multi-gigabyte disk image costs one
/// buffer of memory. Regular files and block devices (VM disks on LVM) are accepted; a directory,
/// FIFO or socket is refused, since reading one would block or mean nothing. The file is opened
/// without blocking (O_NONBLOCK: opening a FIFO would wait for a writer) and without becoming a
/// controlling terminal.
public enum FileDigester {
    public static let chunkSize = 1 << 20

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    /// The flags every measured file is opened with; `O_NOFOLLOW` is added for callers' paths.
    public static let openFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY

    /// How far a hash has come: bytes read, and the file's size (0 for a block device).
    public typealias Progress = (_ done: Int64, _ total: Int64) -> Void

    public static func digest(
        ofFileAt path: String,
        using algorithm: HashAlgorithm = .sha256,
        deadline: ContinuousClock.Instant? = nil,
        progress: Progress? = nil
    ) throws(Failure) -> Digest {
        let fd = open(path, openFlags)
        guard fd >= 0 else { throw Failure(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        return try digest(ofDescriptor: fd, path: path, using: algorithm, deadline: deadline, progress: progress)
    }

    /// Hashes an open file (which the caller closes), giving up at `deadline`.
    public static func digest(
        ofDescriptor fd: Int32,
        path: String,
        using algorithm: HashAlgorithm = .sha256,
        deadline: ContinuousClock.Instant? = nil,
        progress: Progress? = nil
    ) throws(Failure) -> Digest {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure(path: path, reason: String(cString: strerror(errno))) }
        let type = info.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else {
            throw Failure(path: path, reason: "not a regular file or block device")
        }
        var hasher = StreamingHasher(algorithm)
        let total = type == S_IFREG ? Int64(info.st_size) : 0
        var done: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer.baseAddress, chunkSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(path: path, reason: String(cString: strerror(errno)))
            }
            if count == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            done += Int64(count)
            progress?(done, total)
            if let deadline, ContinuousClock.now > deadline {
                throw Failure(path: path, reason: "hashing took longer than allowed; the file was not measured")
            }
        }
        return hasher.finalize()
    }
}
