/// A measurement: an algorithm and the digest bytes, written `"<alg>:<lowercase hex>"` on the wire
/// and in policies (architecture.md section 4).
///
/// Parsing is strict on purpose: upper-case hex, a wrong length or an unknown algorithm is refused
/// rather than normalised, so that two spellings of one digest can never compare differently in a
/// policy and on the wire.
public struct Digest: Hashable, Sendable, CustomStringConvertible {
    public let algorithm: HashAlgorithm
    public let bytes: [UInt8]

    /// A digest from raw bytes; the length must match the algorithm.
    public init(algorithm: HashAlgorithm, bytes: [UInt8]) throws(UkeyCoreError) {
        guard bytes.count == algorithm.digestSize else {
            throw UkeyCoreError(
                .invalidDigest,
                "a \(algorithm.rawValue) digest has \(algorithm.digestSize) bytes, got \(bytes.count)"
            )
        }
        self.algorithm = algorithm
        self.bytes = bytes
    }

    /// Parses `"sha256:<64 lowercase hex>"` (or sha384, sha512, sm3).
    public init(parsing text: String) throws(UkeyCoreError) {
        guard text.utf8.count <= 7 + 128 + 1 else {
            throw UkeyCoreError(.invalidDigest, "digest is too long (\(text.utf8.count) bytes)")
        }
        guard let colon = text.firstIndex(of: ":") else {
            throw UkeyCoreError(.invalidDigest, "digest '\(text)' must look like 'sha256:<hex>'")
        }
        let name = String(text[..<colon])
        guard let algorithm = HashAlgorithm(rawValue: name) else {
            let known = HashAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")
            throw UkeyCoreError(.invalidDigest, "unknown digest algorithm '\(name)'; expected one of \(known)")
        }
        let hex = text[text.index(after: colon)...].utf8
        guard hex.count == algorithm.digestSize * 2 else {
            throw UkeyCoreError(
                .invalidDigest,
                "a \(name) digest has \(algorithm.digestSize * 2) hex digits, got \(hex.count)"
            )
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(algorithm.digestSize)
        var high: UInt8? = nil
        for char in hex {
            let nibble: UInt8
            switch char {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = char - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = char - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"):
                throw UkeyCoreError(.invalidDigest, "digest hex must be lower case")
            default:
                throw UkeyCoreError(.invalidDigest, "digest contains a character that is not hex")
            }
            if let h = high {
                bytes.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        try self.init(algorithm: algorithm, bytes: bytes)
    }

    /// Hashes `data` with `algorithm`.
    public static func of(_ data: [UInt8], using algorithm: HashAlgorithm = .sha256) -> Digest {
        // The hash output always has the algorithm's length, so this cannot throw.
        Digest(unchecked: algorithm, algorithm.hash(data))
    }

    init(unchecked algorithm: HashAlgorithm, _ bytes: [UInt8]) {
        self.algorithm = algorithm
        self.bytes = bytes
    }

    /// Lower-case hex of the bytes, without the algorithm.
    public var hex: String { Hex.encode(bytes) }

    public var description: String { "\(algorithm.rawValue):\(hex)" }
}

extension Digest: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
