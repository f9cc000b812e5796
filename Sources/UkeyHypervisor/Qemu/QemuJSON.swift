/// JSON as QEMU 7.2 reads an option's argument that begins with `{` (-device, -object,
/// -blockdev, -netdev, -audiodev, -display, -compat) and a `json:` file name
/// (qobject/json-lexer.c, json-parser.c): strings in double **or single** quotes, the escapes
/// `\" \' \\ \/ \b \f \n \r \t \uXXXX` (surrogate pairs joined; `\u0000` becomes the two bytes
/// C0 80, as QEMU's modified UTF-8 does), `true`, `false`, `null`, RFC 8259 numbers, no
/// duplicate key, no trailing comma, exactly one value. The gate reads keys after their escapes,
/// as QEMU does, so `"file\u006eame"` is `filename`. Untrusted input: bounded in size and depth.
public enum QemuJSON: Sendable, Equatable {
    case object([(key: String, value: QemuJSON)])
    case array([QemuJSON])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    public static let maxBytes = 1 << 20
    public static let maxDepth = 64

    public static func == (a: QemuJSON, b: QemuJSON) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.array(let x), .array(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.number(let x), .number(let y)): x == y
        case (.bool(let x), .bool(let y)): x == y
        case (.null, .null): true
        default: false
        }
    }

    /// A member of an object, by its key as QEMU reads it.
    public subscript(key: String) -> QemuJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public init(parsing text: String) throws(HypervisorError) {
        let bytes = Array(text.utf8)
        guard bytes.count <= Self.maxBytes else {
            throw HypervisorError("JSON of \(bytes.count) bytes; at most \(Self.maxBytes)")
        }
        var reader = Reader(bytes: bytes)
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.offset == bytes.count else {
            throw HypervisorError("JSON: more than one value (at byte \(reader.offset))")
        }
        self = value
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func skipSpace() {
            while offset < bytes.count, [0x20, 0x09, 0x0D, 0x0A].contains(bytes[offset]) { offset += 1 }
        }

        func fail(_ what: String) -> HypervisorError { HypervisorError("JSON: \(what) at byte \(offset)") }

        mutating func value(depth: Int) throws(HypervisorError) -> QemuJSON {
            guard depth < QemuJSON.maxDepth else { throw fail("nested deeper than \(QemuJSON.maxDepth)") }
            guard offset < bytes.count else { throw fail("a value is missing") }
            switch bytes[offset] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""), UInt8(ascii: "'"): return .string(try string())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default:
                for (word, value) in [("true", QemuJSON.bool(true)), ("false", .bool(false)), ("null", .null)]
                where bytes[offset...].starts(with: word.utf8) {
                    let end = offset + word.utf8.count
                    // The lexer takes [a-z]+ as one keyword: "truex" is not "true".
                    guard end == bytes.count || !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[end]) else {
                        break
                    }
                    offset = end
                    return value
                }
                throw fail("unexpected character")
            }
        }

        mutating func object(depth: Int) throws(HypervisorError) -> QemuJSON {
            offset += 1
            var members: [(key: String, value: QemuJSON)] = []
            skipSpace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
                offset += 1
                return .object(members)
            }
            while true {
                skipSpace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") || bytes[offset] == UInt8(ascii: "'")
                else { throw fail("a key must be a string") }
                let key = try string()
                guard !members.contains(where: { $0.key == key }) else { throw fail("duplicate key '\(key)'") }
                skipSpace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw fail("':' expected") }
                offset += 1
                skipSpace()
                members.append((key, try value(depth: depth + 1)))
                skipSpace()
                guard offset < bytes.count else { throw fail("the object is not closed") }
                if bytes[offset] == UInt8(ascii: ",") {
                    offset += 1
                    continue
                }
                guard bytes[offset] == UInt8(ascii: "}") else { throw fail("',' or '}' expected") }
                offset += 1
                return .object(members)
            }
        }

        mutating func array(depth: Int) throws(HypervisorError) -> QemuJSON {
            offset += 1
            var items: [QemuJSON] = []
            skipSpace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
                offset += 1
                return .array(items)
            }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard offset < bytes.count else { throw fail("the array is not closed") }
                if bytes[offset] == UInt8(ascii: ",") {
                    offset += 1
                    continue
                }
                guard bytes[offset] == UInt8(ascii: "]") else { throw fail("',' or ']' expected") }
                offset += 1
                return .array(items)
            }
        }

        mutating func number() throws(HypervisorError) -> String {
            let start = offset
            if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            func digits() -> Int {
                let from = offset
                while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) {
                    offset += 1
                }
                return offset - from
            }
            let integer = offset
            guard digits() > 0 else { throw fail("a number needs digits") }
            guard bytes[integer] != UInt8(ascii: "0") || offset - integer == 1 else {
                throw fail("a number may not start with 0")
            }
            if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
                offset += 1
                guard digits() > 0 else { throw fail("a fraction needs digits") }
            }
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
                offset += 1
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") {
                    offset += 1
                }
                guard digits() > 0 else { throw fail("an exponent needs digits") }
            }
            return String(decoding: bytes[start..<offset], as: UTF8.self)
        }

        mutating func string() throws(HypervisorError) -> String {
            let quote = bytes[offset]
            offset += 1
            var out: [UInt8] = []
            while true {
                guard offset < bytes.count else { throw fail("the string is not closed") }
                let byte = bytes[offset]
                offset += 1
                if byte == quote { break }
                // QEMU's lexer refuses raw control bytes, 0xFE and 0xFF inside a string.
                guard byte >= 0x20, byte != 0xFE, byte != 0xFF else { throw fail("a control byte in a string") }
                guard byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    continue
                }
                guard offset < bytes.count else { throw fail("an escape is cut short") }
                let escape = bytes[offset]
                offset += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard bytes[offset...].starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "u")]) else {
                            throw fail("a lone surrogate")
                        }
                        offset += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("a lone surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard !(0xDC00...0xDFFF).contains(scalar), !(0xFDD0...0xFDEF).contains(scalar),
                        scalar & 0xFFFE != 0xFFFE
                    else {
                        throw fail("an invalid code point")
                    }
                    if scalar == 0 {
                        out += [0xC0, 0x80]  // modified UTF-8, as QEMU stores it
                    } else if let unicode = Unicode.Scalar(scalar) {
                        out += Array(String(Character(unicode)).utf8)
                    } else {
                        throw fail("an invalid code point")
                    }
                default:
                    throw fail("an invalid escape")
                }
            }
            // C0 80 (a \u0000) is not valid UTF-8 for Swift: keep it as U+FFFD, which matches no key
            // or path the gate allows, so such a string can only be refused.
            return String(decoding: out, as: UTF8.self)
        }

        mutating func hex4() throws(HypervisorError) -> UInt32 {
            guard offset + 4 <= bytes.count else { throw fail("\\u needs four hex digits") }
            var value: UInt32 = 0
            for byte in bytes[offset..<(offset + 4)] {
                guard let digit = Character(UnicodeScalar(byte)).hexDigitValue else {
                    throw fail("\\u needs four hex digits")
                }
                value = value << 4 | UInt32(digit)
            }
            offset += 4
            return value
        }
    }
}
