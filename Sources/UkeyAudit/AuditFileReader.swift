import Foundation

/// Reads an audit log line by line in bounded chunks, with each line's byte offset, so a log of
/// any size is read in constant memory and one absurd "line" cannot exhaust it.
struct AuditFileReader {
    struct Line {
        let offset: UInt64
        let bytes: [UInt8]
    }

    enum Item {
        case line(Line)
        /// Bytes after the last newline: a record cut short (or garbage).
        case partial(offset: UInt64, count: Int)
        /// A line longer than `AuditLine.maxBytes`.
        case oversized(offset: UInt64)
    }

    private let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var bufferOffset: UInt64
    private var eof = false
    static let chunk = 1 << 20

    /// Reads `fd` from `offset` (the descriptor is not closed here).
    init(fd: Int32, offset: UInt64) {
        self.fd = fd
        self.bufferOffset = offset
    }

    mutating func next() throws(AuditError) -> Item? {
        while true {
            if let newline = newlineIndex() {
                let line = Line(offset: bufferOffset + UInt64(start), bytes: Array(buffer[start..<newline]))
                start = newline + 1
                return .line(line)
            }
            if buffer.count - start > AuditLine.maxBytes { return .oversized(offset: bufferOffset + UInt64(start)) }
            if eof {
                guard start < buffer.count else { return nil }
                let item = Item.partial(offset: bufferOffset + UInt64(start), count: buffer.count - start)
                start = buffer.count
                return item
            }
            // Keep the unread tail, then read the next chunk after it.
            buffer.removeSubrange(0..<start)
            bufferOffset += UInt64(start)
            start = 0
            let readAt = off_t(bufferOffset) + off_t(buffer.count)
            var failed = false
            let chunk = [UInt8](unsafeUninitializedCapacity: Self.chunk) { raw, count in
                let n = pread(fd, raw.baseAddress!, Self.chunk, readAt)
                failed = n < 0
                count = max(0, n)
            }
            guard !failed else {
                throw AuditError(.io, "cannot read the audit log: \(String(cString: strerror(errno)))")
            }
            if chunk.isEmpty { eof = true }
            buffer.append(contentsOf: chunk)
        }
    }

    /// memchr: a log is scanned whole on every verification, so this loop must be fast.
    private func newlineIndex() -> Int? {
        guard start < buffer.count else { return nil }
        return buffer.withUnsafeBytes { raw -> Int? in
            guard let found = memchr(raw.baseAddress! + start, 0x0A, buffer.count - start) else { return nil }
            return raw.baseAddress!.distance(to: UnsafeRawPointer(found))
        }
    }
}
