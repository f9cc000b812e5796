#if canImport(Glibc)
import Glibc
#endif

/// What of a qcow2 image's header decides which other files QEMU opens for it (QEMU's qcow2
/// specification, docs/interop/qcow2.txt; all fields big-endian): the backing file (offset u64 at
/// byte 8, size u32 at 16), and in the header extensions that follow the header (at byte 72 for
/// version 2, at `header_length` for version 3: type u32, length u32, data padded to 8 bytes, type
/// 0 ends them) the backing file's format (0xE2792ACA) and an external data file (0x44415441,
/// with incompatible feature bit 2). Untrusted bytes: every field is bounded.
public struct QCOW2Header: Sendable, Equatable {
    public static let magic: [UInt8] = [0x51, 0x46, 0x49, 0xfb]
    /// QEMU allows a backing file name of at most 1023 bytes.
    public static let maxBackingName = 1023
    /// The backing name must lie within the image's first megabyte (it sits in the first cluster).
    public static let maxBackingOffset: UInt64 = 1 << 20
    static let backingFormatExtension: UInt32 = 0xE279_2ACA
    static let dataFileExtension: UInt32 = 0x4441_5441
    static let dataFileFeature: UInt64 = 1 << 2

    public let version: UInt32
    /// The backing file as the image names it (relative names are relative to the image's
    /// directory), or nil for an image that stands alone.
    public let backingFile: String?
    /// The backing file's format as the image records it; nil when it does not (QEMU then
    /// guesses it from the backing file's content).
    public let backingFormat: String?
    /// An external data file the image's clusters live in (QEMU opens it as well), if any.
    public let dataFile: String?
    /// Whether the image says its data lives in an external file (incompatible feature bit 2).
    public let hasExternalData: Bool

    /// Parses the header from the image's first bytes (`bytes` may be longer than needed).
    public init(parsing bytes: [UInt8]) throws(HypervisorError) {
        guard bytes.count >= 72, Array(bytes[0..<4]) == Self.magic else {
            throw HypervisorError("not a qcow2 image (no QFI magic, or a header cut short)")
        }
        func u32(_ at: Int) -> UInt32 { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        func u64(_ at: Int) -> UInt64 { bytes[at..<(at + 8)].reduce(0) { $0 << 8 | UInt64($1) } }
        version = u32(4)
        guard version == 2 || version == 3 else { throw HypervisorError("qcow2 version \(version) is not 2 or 3") }
        let offset = u64(8)
        let size = Int(u32(16))
        if offset != 0 && size != 0 {
            guard size <= Self.maxBackingName else {
                throw HypervisorError("the backing file name is \(size) bytes; at most \(Self.maxBackingName)")
            }
            guard offset >= 72, offset <= Self.maxBackingOffset else {
                throw HypervisorError("the backing file name lies at byte \(offset), outside the header")
            }
            let start = Int(offset)
            guard bytes.count >= start + size else {
                throw HypervisorError("the image ends before its backing file name")
            }
            backingFile = try Self.text(Array(bytes[start..<(start + size)]), "the backing file name")
        } else {
            backingFile = nil
        }
        var extensionsAt = 72
        var incompatible: UInt64 = 0
        if version == 3 {
            guard bytes.count >= 104 else { throw HypervisorError("the version 3 header is cut short") }
            incompatible = u64(72)
            extensionsAt = Int(u32(100))
            guard extensionsAt >= 104, extensionsAt <= 4096 else {
                throw HypervisorError("a header length of \(extensionsAt) bytes")
            }
        }
        hasExternalData = incompatible & Self.dataFileFeature != 0
        var backingFormat: String?
        var dataFile: String?
        var at = extensionsAt
        for _ in 0..<64 {
            guard at + 8 <= bytes.count else { throw HypervisorError("the header extensions run past the bytes read") }
            let type = u32(at)
            let length = Int(u32(at + 4))
            if type == 0 { break }
            guard length <= 65_536, at + 8 + length <= bytes.count else {
                throw HypervisorError("a header extension of \(length) bytes runs out of the header")
            }
            let data = Array(bytes[(at + 8)..<(at + 8 + length)])
            switch type {
            case Self.backingFormatExtension: backingFormat = try Self.text(data, "the backing format")
            case Self.dataFileExtension: dataFile = try Self.text(data, "the external data file name")
            default: break
            }
            at += 8 + (length + 7) / 8 * 8
        }
        self.backingFormat = backingFormat
        self.dataFile = dataFile
    }

    static func text(_ bytes: [UInt8], _ what: String) throws(HypervisorError) -> String {
        guard !bytes.contains(0), let text = String(validating: bytes, as: UTF8.self) else {
            throw HypervisorError("\(what) is not UTF-8 text")
        }
        return text
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
