/// A bounds-checked little-endian cursor over untrusted bytes. Every read either returns a value
/// inside the buffer or throws with the offset, so a parser built on it cannot read out of range.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset = 0
    let what: String

    init(_ bytes: [UInt8], what: String) {
        self.bytes = bytes
        self.what = what
    }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset == bytes.count }

    mutating func read(_ count: Int, _ field: String) throws(UkeyCoreError) -> [UInt8] {
        guard count >= 0, count <= remaining else {
            throw UkeyCoreError(
                .malformedEventLog,
                "\(what) is truncated at byte \(offset): \(field) needs \(count) bytes, \(remaining) left"
            )
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func u8(_ field: String) throws(UkeyCoreError) -> UInt8 {
        try read(1, field)[0]
    }

    mutating func u16(_ field: String) throws(UkeyCoreError) -> UInt16 {
        let b = try read(2, field)
        return UInt16(b[0]) | UInt16(b[1]) << 8
    }

    mutating func u32(_ field: String) throws(UkeyCoreError) -> UInt32 {
        let b = try read(4, field)
        return UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
    }

    func fail(_ reason: String, at position: Int? = nil) -> UkeyCoreError {
        UkeyCoreError(.malformedEventLog, "\(what) byte \(position ?? offset): \(reason)")
    }
}

/// The little-endian writer that mirrors `ByteReader`.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { bytes += [UInt8(value & 0xff), UInt8(value >> 8)] }
    mutating func u32(_ value: UInt32) {
        bytes += [UInt8(value & 0xff), UInt8(value >> 8 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 24)]
    }
    mutating func append(_ more: [UInt8]) { bytes += more }
}
