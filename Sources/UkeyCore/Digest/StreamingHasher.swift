import Crypto
import UkeySM

/// Hashes a stream of chunks, so that a multi-gigabyte image is measured without being read whole.
public struct StreamingHasher: Sendable {
    private enum State: Sendable {
        case sha256(SHA256)
        case sha384(SHA384)
        case sha512(SHA512)
        case sm3(SM3)
    }

    private var state: State
    public let algorithm: HashAlgorithm

    public init(_ algorithm: HashAlgorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .sha256: state = .sha256(SHA256())
        case .sha384: state = .sha384(SHA384())
        case .sha512: state = .sha512(SHA512())
        case .sm3: state = .sm3(SM3())
        }
    }

    public mutating func update(_ chunk: UnsafeRawBufferPointer) {
        switch state {
        case .sha256(var h):
            h.update(bufferPointer: chunk)
            state = .sha256(h)
        case .sha384(var h):
            h.update(bufferPointer: chunk)
            state = .sha384(h)
        case .sha512(var h):
            h.update(bufferPointer: chunk)
            state = .sha512(h)
        case .sm3(var h):
            // Released from the enum first, so the context is uniquely held and not copied.
            state = .sha256(SHA256())
            h.update(bufferPointer: chunk)
            state = .sm3(h)
        }
    }

    public func finalize() -> Digest {
        switch state {
        case .sha256(let h): Digest(unchecked: .sha256, Array(h.finalize()))
        case .sha384(let h): Digest(unchecked: .sha384, Array(h.finalize()))
        case .sha512(let h): Digest(unchecked: .sha512, Array(h.finalize()))
        case .sm3(let h): Digest(unchecked: .sm3, h.finalize())
        }
    }
}
