/// SM2 signatures in their two forms: DER `SEQUENCE { INTEGER r, INTEGER s }` (X.509, OpenSSL,
/// ukey's wire) and raw r || s, 32 bytes each (GM/T 0009's and SKF's). The DER reader takes
/// untrusted bytes: it accepts exactly one minimal encoding and refuses anything else.
public enum SM2Signature {
    /// r || s (64 bytes) as DER.
    public static func der(fromRaw raw: [UInt8]) throws(SMError) -> [UInt8] {
        guard raw.count == 64 else {
            throw SMError(.malformed, "a raw SM2 signature is r || s, 64 bytes, got \(raw.count)")
        }
        guard raw[0..<32].contains(where: { $0 != 0 }), raw[32..<64].contains(where: { $0 != 0 }) else {
            throw SMError(.malformed, "a signature's r and s are never zero")
        }
        let body = integer(Array(raw[0..<32])) + integer(Array(raw[32..<64]))
        return [0x30, UInt8(body.count)] + body
    }

    /// DER as r || s (64 bytes).
    public static func raw(fromDER der: [UInt8]) throws(SMError) -> [UInt8] {
        guard der.count >= 8, der.count <= 72, der[0] == 0x30, Int(der[1]) == der.count - 2 else {
            throw SMError(.malformed, "an SM2 signature is a DER SEQUENCE of 8-72 bytes")
        }
        var offset = 2
        var out: [UInt8] = []
        for name in ["r", "s"] {
            guard offset + 2 <= der.count, der[offset] == 0x02 else {
                throw SMError(.malformed, "the signature's \(name) is not an INTEGER")
            }
            let length = Int(der[offset + 1])
            let start = offset + 2
            guard length >= 1, length <= 33, start + length <= der.count else {
                throw SMError(.malformed, "the signature's \(name) has a bad length")
            }
            var value = Array(der[start..<start + length])
            guard value[0] & 0x80 == 0 else { throw SMError(.malformed, "the signature's \(name) is negative") }
            if value.count > 1, value[0] == 0 {
                guard value[1] & 0x80 != 0 else {
                    throw SMError(.malformed, "the signature's \(name) is not minimally encoded")
                }
                value.removeFirst()
            }
            guard value.count <= 32 else {
                throw SMError(.malformed, "the signature's \(name) is longer than 32 bytes")
            }
            guard value.contains(where: { $0 != 0 }) else {
                throw SMError(.malformed, "the signature's \(name) is zero")
            }
            out += [UInt8](repeating: 0, count: 32 - value.count) + value
            offset = start + length
        }
        guard offset == der.count else { throw SMError(.malformed, "bytes after the signature's s") }
        return out
    }

    /// A non-negative big-endian value as a minimal DER INTEGER.
    static func integer(_ bytes: [UInt8]) -> [UInt8] {
        var value = Array(bytes.drop(while: { $0 == 0 }))
        if value.isEmpty { value = [0] }
        if value[0] & 0x80 != 0 { value.insert(0, at: 0) }
        return [0x02, UInt8(value.count)] + value
    }
}
