import Glibc

/// Reading durable records back: `ukeyctl audit` queries and followers.
extension AuditLog {
    /// Where a reader of the log stands: the next record's `seq` and the byte it starts at. A
    /// follower keeps one, so each look at the log reads only what was added since.
    public struct Cursor: Sendable, Hashable {
        public internal(set) var seq: UInt64
        var offset: UInt64
        /// The file the offset is in; 0: none yet (start at the current file's first record).
        var file: UInt64 = 0
        /// The start of the log (of its current file, after a rotation).
        public static let start = Cursor(seq: 1, offset: 0)
    }

    /// Durable records with `seq >= since`, at most `limit`, as their lines.
    public func records(since: UInt64, limit: Int) throws(AuditError) -> [(seq: UInt64, line: [UInt8])] {
        try records(from: .start, since: since, limit: limit).records
    }

    /// Durable records with `seq >= since`, at most `limit`, read from `cursor` on (which must be
    /// at or before `since`), and the cursor after the last record read.
    public func records(
        from cursor: Cursor,
        since: UInt64,
        limit: Int
    ) throws(AuditError) -> (records: [(seq: UInt64, line: [UInt8])], cursor: Cursor) {
        // The durable end first: a rotation after it only adds records past it.
        let last = progress.lastSeq
        guard let handle = file.duplicate() else {
            throw AuditError(.io, "cannot read the audit log: \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(handle.fd) }
        let generation = handle.generation
        // A cursor into a file rotated away (or none yet) starts at the current file's first record.
        let position0 = cursor.file == generation ? cursor : Cursor(seq: handle.firstSeq, offset: 0, file: generation)
        var reader = AuditFileReader(fd: handle.fd, offset: position0.offset)
        var out: [(seq: UInt64, line: [UInt8])] = []
        var position = position0
        while out.count < limit, position.seq <= last, let item = try reader.next() {
            guard case .line(let line) = item else { break }
            if position.seq >= since { out.append((position.seq, line.bytes)) }
            position = Cursor(
                seq: position.seq + 1,
                offset: line.offset + UInt64(line.bytes.count) + 1,
                file: generation
            )
        }
        return (out, position)
    }
}
