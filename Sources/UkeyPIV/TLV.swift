/// BER-TLV as PIV uses it: tags of one to three bytes, definite lengths up to 3 bytes (`82 xx xx`),
/// read from untrusted bytes with every length checked against what is there.
public enum TLV {
    public struct Malformed: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// One element: its tag (as the bytes that encode it, big-endian in an Int) and its value.
    public struct Element: Sendable, Hashable {
        public let tag: Int
        public let value: [UInt8]
    }

    /// Reads consecutive elements filling `bytes` exactly.
    public static func parse(_ bytes: some Collection<UInt8>) throws(Malformed) -> [Element] {
        let bytes = Array(bytes)
        var elements: [Element] = []
        var index = 0
        while index < bytes.count {
            var tag = Int(bytes[index])
            index += 1
            if tag & 0x1F == 0x1F {
                // Multi-byte tag: continuation bytes have bit 8 set; PIV's longest is 3 bytes.
                var more = 0
                repeat {
                    guard index < bytes.count, more < 2 else {
                        throw Malformed(description: "a tag runs past the data or is longer than 3 bytes")
                    }
                    tag = tag << 8 | Int(bytes[index])
                    more += 1
                    index += 1
                } while bytes[index - 1] & 0x80 != 0
            }
            guard index < bytes.count else { throw Malformed(description: "tag \(hex(tag)) has no length") }
            var length = Int(bytes[index])
            index += 1
            if length & 0x80 != 0 {
                let count = length & 0x7F
                guard (1...3).contains(count), index + count <= bytes.count else {
                    throw Malformed(description: "tag \(hex(tag)) has a length of \(count) bytes; PIV uses 1 to 3")
                }
                length = bytes[index..<(index + count)].reduce(0) { $0 << 8 | Int($1) }
                index += count
            }
            guard length <= bytes.count - index else {
                throw Malformed(description: "tag \(hex(tag)) says \(length) bytes, \(bytes.count - index) are left")
            }
            elements.append(Element(tag: tag, value: Array(bytes[index..<(index + length)])))
            index += length
        }
        return elements
    }

    /// Encodes one element; `tag` is written in as many bytes as it needs.
    public static func encode(_ tag: Int, _ value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        if tag > 0xFFFF { out.append(UInt8(tag >> 16)) }
        if tag > 0xFF { out.append(UInt8(tag >> 8 & 0xFF)) }
        out.append(UInt8(tag & 0xFF))
        return out + length(value.count) + value
    }

    public static func length(_ count: Int) -> [UInt8] {
        switch count {
        case ..<0x80: [UInt8(count)]
        case ..<0x100: [0x81, UInt8(count)]
        default: [0x82, UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
        }
    }

    static func hex(_ tag: Int) -> String { String(tag, radix: 16, uppercase: true) }
}

extension Array where Element == TLV.Element {
    /// The value of the first element with `tag`.
    public func value(_ tag: Int) -> [UInt8]? { first { $0.tag == tag }?.value }
}
