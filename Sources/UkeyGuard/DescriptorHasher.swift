import Crypto
import Glibc

/// SHA-256 of a file read through its descriptor (pread from offset 0), never by path: the path
/// may name another file by the time it is opened again.
public enum DescriptorHasher {
    public static func sha256(_ descriptor: Int32) -> [UInt8]? {
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: off_t = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
            offset += off_t(count)
        }
        return Array(hasher.finalize())
    }
}
