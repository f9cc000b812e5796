import UkeyPIV
import Crypto
import Foundation

/// A digest the card was given rather than computed: PIV's GENERAL AUTHENTICATE signs the hash
/// the client sends (SP 800-73-4 part 2, 3.2.4), so ECDSA must take those bytes as they are.
struct PrehashedDigest: Crypto.Digest {
    static let byteCount = 32
    private let bytes: [UInt8]

    /// A P-256 ECDSA input: a hash of at most 32 bytes, left-padded to the field size as ECDSA
    /// takes a shorter one (FIPS 186-4, 6.4: the leftmost bits, as an integer).
    init?(_ hash: [UInt8]) {
        guard (1...Self.byteCount).contains(hash.count) else { return nil }
        bytes = Array(repeating: 0, count: Self.byteCount - hash.count) + hash
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }

    func makeIterator() -> Array<UInt8>.Iterator { bytes.makeIterator() }
    var description: String { "prehashed(\(bytes.count) bytes)" }
}
