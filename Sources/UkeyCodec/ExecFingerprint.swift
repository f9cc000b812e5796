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

    /// The hash state after the domain tag and a VM's name: made once per VM, copied per entry
    /// (a million entries are fingerprinted at every policy load).
    public struct Prefix: Sendable {
        let state: SHA256

        public init(vm: String) {
            var state = SHA256()
            state.update(data: Array("ukey-exec-fingerprint-v1\u{0}".utf8) + Array(vm.utf8) + [0])
            self.state = state
        }

        public func fingerprint(path: UnsafeRawBufferPointer, sha256: UnsafeRawBufferPointer) -> ExecFingerprint {
            var hasher = state
            hasher.update(bufferPointer: path)
            withUnsafeBytes(of: UInt8(0)) { hasher.update(bufferPointer: $0) }
            hasher.update(bufferPointer: sha256)
            return hasher.finalize().withUnsafeBytes { ExecFingerprint(bytes: $0) }
        }
    }

    public init(vm: String, path: UnsafeRawBufferPointer, sha256: UnsafeRawBufferPointer) {
        self = Prefix(vm: vm).fingerprint(path: path, sha256: sha256)
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
