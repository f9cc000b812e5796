#if canImport(Glibc)
import Glibc
#endif

/// The little of a qcow2 image's header that says which image it is layered on: its backing
/// file (QEMU's qcow2 specification: magic "QFI\u{fb}", version, backing_file_offset u64 at byte 8,
/// backing_file_size u32 at byte 16, all big-endian). Untrusted bytes: every field is bounded.
public struct QCOW2Header: Sendable, Equatable {
    public static let magic: [UInt8] = [0x51, 0x46, 0x49, 0xfb]
    /// QEMU allows a backing file name of at most 1023 bytes.
    public static let maxBackingName = 1023
    /// The backing name must lie within the image's first megabyte (it sits in the first cluster).
    public static let maxBackingOffset: UInt64 = 1 << 20

    public let version: UInt32
    /// The backing file as the image names it (relative names are relative to the image's
    /// directory), or nil for an image that stands alone.
    public let backingFile: String?

    /// Parses the header from the image's first bytes (`bytes` may be longer than needed).
    public init(parsing bytes: [UInt8]) throws(HypervisorError) {
        guard bytes.count >= 20, Array(bytes[0..<4]) == Self.magic else { throw HypervisorError("not a qcow2 image (no QFI magic)") }
        func u32(_ at: Int) -> UInt32 { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        func u64(_ at: Int) -> UInt64 { bytes[at..<(at + 8)].reduce(0) { $0 << 8 | UInt64($1) } }
        version = u32(4)
        guard version == 2 || version == 3 else { throw HypervisorError("qcow2 version \(version) is not 2 or 3") }
        let offset = u64(8), size = Int(u32(16))
        guard offset != 0, size != 0 else {
            backingFile = nil
            return
        }
        guard size <= Self.maxBackingName else { throw HypervisorError("the backing file name is \(size) bytes; at most \(Self.maxBackingName)") }
        guard offset >= 20, offset <= Self.maxBackingOffset else { throw HypervisorError("the backing file name lies at byte \(offset), outside the header") }
        let start = Int(offset)
        guard bytes.count >= start + size else { throw HypervisorError("the image ends before its backing file name") }
        let name = Array(bytes[start..<(start + size)])
        guard !name.contains(0), let text = String(validating: name, as: UTF8.self) else {
            throw HypervisorError("the backing file name is not UTF-8 text")
        }
        backingFile = text
    }

    /// Reads the header of the image at `path`; nil if the file is not a qcow2 image (a raw one).
    public static func read(path: String) throws(HypervisorError) -> QCOW2Header? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw HypervisorError("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let want = Int(maxBackingOffset) + maxBackingName
        var bytes = [UInt8](repeating: 0, count: want)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, 0) }
        guard n >= 0 else { throw HypervisorError("\(path): \(String(cString: strerror(errno)))") }
        bytes.removeSubrange(n...)
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else { return nil }
        do {
            return try QCOW2Header(parsing: bytes)
        } catch {
            throw HypervisorError("\(path): \(error.description)")
        }
    }
}
