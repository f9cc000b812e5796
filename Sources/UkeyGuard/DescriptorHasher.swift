import Crypto
import Glibc

/// SHA-256 of a file read through its descriptor (pread from offset 0), never by path: the path
/// may name another file by the time it is opened again.
///
/// One hasher per guard, its buffer allocated once: a fresh megabyte per exec cost more than the
/// hashing (glibc maps and unmaps an allocation that large, and every page faults in again).
public final class DescriptorHasher {
    private let buffer: UnsafeMutableRawBufferPointer

    public init(bufferSize: Int = 256 << 10) {
        buffer = .allocate(byteCount: bufferSize, alignment: 64)
    }

    deinit { buffer.deallocate() }

    public func sha256(_ descriptor: Int32) -> [UInt8]? {
        var hasher = SHA256()
        var offset: off_t = 0
        while true {
            let count = pread(descriptor, buffer.baseAddress, buffer.count, offset)
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            offset += off_t(count)
        }
        return Array(hasher.finalize())
    }
}
