import Crypto
import Foundation

/// A hash algorithm ukey accepts for measurements, with the TCG algorithm identifier it carries in
/// event logs and quotes (TCG Algorithm Registry, TPM_ALG_ID).
public enum HashAlgorithm: String, CaseIterable, Hashable, Sendable, Codable, Comparable {
    case sha256
    case sha384
    case sha512

    /// TPM_ALG_ID from the TCG Algorithm Registry (sha256 0x000B, sha384 0x000C, sha512 0x000D).
    public var tcgAlgorithmID: UInt16 {
        switch self {
        case .sha256: 0x000B
        case .sha384: 0x000C
        case .sha512: 0x000D
        }
    }

    /// The digest length in bytes.
    public var digestSize: Int {
        switch self {
        case .sha256: 32
        case .sha384: 48
        case .sha512: 64
        }
    }

    /// The algorithm with this TCG identifier, if ukey knows it.
    public init?(tcgAlgorithmID: UInt16) {
        guard let found = Self.allCases.first(where: { $0.tcgAlgorithmID == tcgAlgorithmID }) else { return nil }
        self = found
    }

    /// Hashes `bytes` in one go.
    public func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hash(bufferPointer: $0) }
    }

    /// Hashes the bytes in `buffer` in one go.
    public func hash(bufferPointer buffer: UnsafeRawBufferPointer) -> [UInt8] {
        switch self {
        case .sha256: Array(SHA256.hash(data: buffer))
        case .sha384: Array(SHA384.hash(data: buffer))
        case .sha512: Array(SHA512.hash(data: buffer))
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.digestSize < rhs.digestSize }
}
