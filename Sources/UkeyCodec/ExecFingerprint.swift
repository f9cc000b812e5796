import Crypto

/// An allowed exec in 16 bytes: the first 128 bits of SHA-256 over a VM's name, a path and the
/// SHA-256 of the file that may run there. ukeyd hands a guard the fingerprints of its VM's
/// whitelist (`io.ukey.Runtime.AllowedFingerprints`), and the guard allows a file whose
/// fingerprint is among them without asking: a cold exec then costs a hash, not a round trip.
///
/// 128 bits because the guard's set is public to whoever runs the guard: to pass a file of
/// their own for an allowed one, someone must find a second preimage of one of the set's
/// values, about 2^108 work for a million entries. Anything not in the set is asked about, so
/// a collision could only allow, never refuse, and only by that work.
public struct ExecFingerprint: Hashable, Comparable, Sendable {
    public let high: UInt64
    public let low: UInt64
    public static let size = 16

    public init(vm: String, path: UnsafeRawBufferPointer, sha256: UnsafeRawBufferPointer) {
        var hasher = SHA256()
        hasher.update(data: Array("ukey-exec-fingerprint-v1\u{0}".utf8))
        hasher.update(data: Array(vm.utf8) + [0])
        hasher.update(bufferPointer: path)
        hasher.update(data: [0])
        hasher.update(bufferPointer: sha256)
        let digest = hasher.finalize()
        (high, low) = digest.withUnsafeBytes { raw in
            (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    public init(vm: String, path: String, sha256: [UInt8]) {
        var path = path
        self = path.withUTF8 { pathBytes in
            sha256.withUnsafeBytes { ExecFingerprint(vm: vm, path: UnsafeRawBufferPointer(pathBytes), sha256: $0) }
        }
    }

    /// From its 16 bytes, big-endian.
    public init(bytes: UnsafeRawBufferPointer) {
        high = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    /// Its 16 bytes, big-endian, appended to `out`.
    public func append(to out: inout [UInt8]) {
        withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { out.append(contentsOf: $0) }
    }

    public static func < (a: ExecFingerprint, b: ExecFingerprint) -> Bool {
        (a.high, a.low) < (b.high, b.low)
    }
}
