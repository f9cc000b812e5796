import CLibCrypto

/// SM3 (GB/T 32905-2016), the 256-bit hash of GM/T, through the system's OpenSSL: swift-crypto's
/// BoringSSL has it compiled out. A value type: a copy hashes on independently (the OpenSSL
/// context is copied on the first write after a copy).
public struct SM3: Sendable {
    public static let byteCount = 32

    final class Context: @unchecked Sendable {
        // @unchecked: only the struct that owns it (uniquely, see `update`) touches it.
        let pointer: OpaquePointer

        init() {
            guard let pointer = EVP_MD_CTX_new(), EVP_DigestInit_ex(pointer, EVP_sm3(), nil) == 1 else {
                fatalError("OpenSSL has no SM3 (libcrypto without it cannot serve ukey's SM3 digests)")
            }
            self.pointer = pointer
        }

        init(copying other: Context) {
            guard let pointer = EVP_MD_CTX_new(), EVP_MD_CTX_copy_ex(pointer, other.pointer) == 1 else {
                fatalError("OpenSSL could not copy an SM3 context (out of memory)")
            }
            self.pointer = pointer
        }

        deinit { EVP_MD_CTX_free(pointer) }
    }

    private var context = Context()

    public init() {}

    public mutating func update(bufferPointer buffer: UnsafeRawBufferPointer) {
        if !isKnownUniquelyReferenced(&context) { context = Context(copying: context) }
        guard buffer.count > 0 else { return }
        EVP_DigestUpdate(context.pointer, buffer.baseAddress, buffer.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update(bufferPointer: $0) }
    }

    /// The digest; the hasher itself is left as it was (a copy is finalised).
    public func finalize() -> [UInt8] {
        let finished = Context(copying: context)
        var out = [UInt8](repeating: 0, count: Self.byteCount)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(finished.pointer, &out, &length)
        return out
    }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hash(bufferPointer: $0) }
    }

    public static func hash(bufferPointer buffer: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: byteCount)
        var length: UInt32 = 0
        EVP_Digest(buffer.baseAddress, buffer.count, &out, &length, EVP_sm3(), nil)
        return out
    }
}
