import Crypto
import Foundation
import UkeySM

/// A hash algorithm ukey accepts for measurements, with the TCG algorithm identifier it carries in
/// event logs and quotes (TCG Algorithm Registry, TPM_ALG_ID).
public enum HashAlgorithm: String, CaseIterable, Hashable, Sendable, Codable, Comparable {
    case sha256
    case sha384
    case sha512
    /// GB/T 32905 (GM/T 0004), through the system's OpenSSL.
    case sm3

    /// TPM_ALG_ID from the TCG Algorithm Registry (sha256 0x000B, sha384 0x000C, sha512 0x000D,
    /// sm3_256 0x0012).
    public var tcgAlgorithmID: UInt16 {
        switch self {
        case .sha256: 0x000B
        case .sha384: 0x000C
        case .sha512: 0x000D
        case .sm3: 0x0012
        }
    }

    /// The digest length in bytes.
    public var digestSize: Int {
        switch self {
        case .sha256: 32
        case .sha384: 48
        case .sha512: 64
        case .sm3: 32
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
        case .sm3: SM3.hash(bufferPointer: buffer)
        }
    }

    /// Smallest digest first; equal sizes by TCG identifier (SHA-256 before SM3), so that every
    /// sorted list of banks has one order.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.digestSize, lhs.tcgAlgorithmID) < (rhs.digestSize, rhs.tcgAlgorithmID)
    }
}
