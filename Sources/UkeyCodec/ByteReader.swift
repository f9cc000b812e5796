/// A bounds-checked reader of untrusted binary structures: the TCG event log (little-endian), the
/// TPM's TPMS_ATTEST and TPMT_SIGNATURE and the "ukey-v1" quote (big-endian). Every read checks
/// the length first and names the field that did not fit, so a truncated or lying structure is an
/// error that says where, never an out-of-range crash.
///
/// `Failure` is the caller's own error type, made by `failure` from a message, so a parser keeps
/// its typed throws (`UkeyCoreError`, `TokenError`) while sharing one reader.
public struct ByteReader<Failure: Error> {
    public enum Endianness: Sendable { case little, big }

    public let bytes: [UInt8]
    public private(set) var offset = 0
    /// What is being read, for messages ("event log", "the TPMS_ATTEST").
    public let what: String
    public let endianness: Endianness
    private let failure: (String) -> Failure

    public init(_ bytes: [UInt8], what: String, endianness: Endianness, failure: @escaping (String) -> Failure) {
        self.bytes = bytes
        self.what = what
        self.endianness = endianness
        self.failure = failure
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset == bytes.count }

    public mutating func read(_ count: Int, _ field: String) throws(Failure) -> [UInt8] {
        guard count >= 0, count <= remaining else {
            throw failure("\(what) is truncated at byte \(offset): \(field) needs \(count) bytes, \(remaining) left")
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    public mutating func u8(_ field: String) throws(Failure) -> UInt8 {
        try read(1, field)[0]
    }

    public mutating func u16(_ field: String) throws(Failure) -> UInt16 {
        UInt16(truncatingIfNeeded: try integer(2, field))
    }

    public mutating func u32(_ field: String) throws(Failure) -> UInt32 {
        UInt32(truncatingIfNeeded: try integer(4, field))
    }

    public mutating func u64(_ field: String) throws(Failure) -> UInt64 {
        try integer(8, field)
    }

    /// A length-prefixed field (a TPM2B, or a quote's nonce): a u16 size of at most `max`, then
    /// that many bytes.
    public mutating func sized(_ field: String, max: Int) throws(Failure) -> [UInt8] {
        let size = Int(try u16("\(field) size"))
        guard size <= max else { throw failure("\(what): \(field) of \(size) bytes (at most \(max))") }
        return try read(size, field)
    }

    /// An error at `position` (default: here), in this reader's words.
    public func fail(_ reason: String, at position: Int? = nil) -> Failure {
        failure("\(what) byte \(position ?? offset): \(reason)")
    }

    private mutating func integer(_ width: Int, _ field: String) throws(Failure) -> UInt64 {
        let raw = try read(width, field)
        switch endianness {
        case .big: return raw.reduce(0) { $0 << 8 | UInt64($1) }
        case .little: return raw.reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
    }
}
