import Foundation
import Testing
import UkeyFuzzTargets
import UkeyTesting
import UkeyVarlink

@Suite("JSON reader and writer")
struct JSONReaderTests {
    static let wellFormed: [(String, JSONValue)] = [
        ("{}", JSONValue.object([:])),
        (" [ ] ", .array([])),
        ("null", .null),
        ("true", .bool(true)),
        (
            "[false,0,-0,12,-7,9223372036854775807,-9223372036854775808]",
            .array([false, 0, 0, 12, -7, .int(Int.max), .int(Int.min)])
        ),
        (
            "[1.5,-2e3,1E+2,0.25e-1,9223372036854775808]",
            .array([.double(1.5), .double(-2000), .double(100), .double(0.025), .double(9_223_372_036_854_775_808)])
        ),
        (#"{"a":{"b":[1,{"c":null}]}}"#, ["a": ["b": [1, ["c": .null]]]]),
        (#""\"\\\/\b\f\n\r\t""#, .string("\"\\/\u{08}\u{0C}\n\r\t")),
        (#""\u00e9\u20AC\ud83d\ude00 é€😀""#, .string("é€😀 é€😀")),
        (" \t\r\n{ \"k\" : \"v\" } \n", ["k": "v"]),
    ]

    @Test("well-formed documents are read as JSONValue", arguments: wellFormed)
    func reads(text: String, expected: JSONValue) throws {
        #expect(try JSONReader.parse(Array(text.utf8)) == expected)
    }

    @Test(
        "malformed documents are refused with a reason",
        arguments: [
            ("", "the input ended"),
            ("{\"a\":1,\"a\":2}", "the key 'a' is given twice"),
            ("{\"a\":1,}", "a key in double quotes"),
            ("[1,]", "a value was expected"),
            ("[1 2]", "',' or ']'"),
            ("{\"a\" 1}", "':' was expected"),
            ("{\"a\":1 \"b\":2}", "',' or '}'"),
            ("01", "leading zero"),
            ("-", "a digit was expected"),
            ("1.", "after '.'"),
            ("1e", "in an exponent"),
            ("1e999", "out of range"),
            ("+1", "a value was expected"),
            ("tru", "a value was expected"),
            ("nul", "a value was expected"),
            ("\"abc", "not closed"),
            ("\"a\u{01}b\"", "control character"),
            ("\"\\x\"", "unknown escape"),
            ("\"\\u12\"", "four hex digits"),
            ("\"\\ud83d\"", "lone surrogate"),
            ("\"\\ude00\"", "lone surrogate"),
            ("\"\\ud83d\\u0041\"", "lone surrogate"),
            ("{} {}", "after the value"),
            ("[1] x", "after the value"),
            ("NaN", "a value was expected"),
        ]
    )
    func refuses(text: String, reason: String) {
        #expect {
            try JSONReader.parse(Array(text.utf8))
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test("invalid UTF-8 in a string, and nesting past the limit, are refused")
    func limits() throws {
        #expect(throws: JSONReader.Failure.self) { try JSONReader.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONReader.Failure.self) { try JSONReader.parse([0x22, 0x5C, 0x6E, 0xFF, 0x22]) }
        // Past ASCII without an escape (the reader's fast path is for ASCII only).
        #expect(throws: JSONReader.Failure.self) { try JSONReader.parse([0x22, 0x41, 0xFF, 0x22]) }
        #expect(try JSONReader.parse([0x22, 0x41, 0xC3, 0xA9, 0x7F, 0x22]) == .string("Aé\u{7F}"))
        let deep =
            String(repeating: "[", count: JSONReader.maxDepth + 1)
            + String(repeating: "]", count: JSONReader.maxDepth + 1)
        #expect { try JSONReader.parse(Array(deep.utf8)) } throws: { "\($0)".contains("nested deeper") }
        let allowed =
            String(repeating: "[", count: JSONReader.maxDepth) + String(repeating: "]", count: JSONReader.maxDepth)
        #expect(throws: Never.self) { try JSONReader.parse(Array(allowed.utf8)) }
        // A million brackets fail at the limit, not by running out of stack.
        #expect(throws: JSONReader.Failure.self) { try JSONReader.parse([UInt8](repeating: 0x5B, count: 1_000_000)) }
    }

    @Test("the writer escapes what JSON needs, sorts keys, and Foundation reads its output back to the same value")
    func writes() throws {
        let value: JSONValue = [
            "z": 1,
            "a": [
                "s": "q\"b\\s/\n\t\u{01}\u{1F}é😀", "n": .null, "d": .double(0.1), "l": [true, false, .double(1e300)],
            ],
        ]
        let bytes = JSONWriter.write(value)
        #expect(
            String(decoding: bytes, as: UTF8.self).hasPrefix(
                #"{"a":{"d":0.1,"l":[true,false,1e+300],"n":null,"s":"q\"b\\s/\n\t\u0001\u001f"#
            )
        )
        #expect(try JSONReader.parse(bytes) == value)
        let foundation = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        #expect(((foundation?["a"] as? [String: Any])?["s"] as? String) == "q\"b\\s/\n\t\u{01}\u{1F}é😀")
        #expect(String(decoding: JSONWriter.write(.double(.nan)), as: UTF8.self) == "null")
        #expect(String(decoding: JSONWriter.write(.double(-.infinity)), as: UTF8.self) == "null")
    }

    /// A random value of bounded size and depth, with strings over all of Unicode's planes.
    static func randomValue(depth: Int, using generator: inout some RandomNumberGenerator) -> JSONValue {
        let scalars: [Unicode.Scalar] = [
            "a", "\"", "\\", "/", "\n", "\u{0}", "\u{1F}", "\u{7F}", "é", "\u{FFFF}", "😀", "\u{10FFFF}",
        ]
        switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .int(Int.random(in: Int.min...Int.max, using: &generator))
        case 3: return .double(Double.random(in: -1e20...1e20, using: &generator))
        case 4:
            return .string(
                String(
                    String.UnicodeScalarView(
                        (0..<Int.random(in: 0...8, using: &generator)).map { _ in
                            scalars.randomElement(using: &generator)!
                        }
                    )
                )
            )
        case 5:
            return .array(
                (0..<Int.random(in: 0...4, using: &generator)).map { _ in
                    randomValue(depth: depth + 1, using: &generator)
                }
            )
        default:
            var members: [String: JSONValue] = [:]
            for index in 0..<Int.random(in: 0...4, using: &generator) {
                members["k\(index)"] = randomValue(depth: depth + 1, using: &generator)
            }
            return .object(members)
        }
    }

    @Test("random values round-trip, and Foundation reads each written document to the same value")
    func roundTripAndDifferential() throws {
        var generator = SeededRandom.forTest()
        for _ in 0..<2000 {
            let value = Self.randomValue(depth: 0, using: &generator)
            let bytes = JSONWriter.write(value)
            #expect(try JSONReader.parse(bytes) == value, "\(generator)")
            let foundation = try JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)
            #expect(
                FoundationJSON.agrees(value, foundation),
                "Foundation reads \(String(decoding: bytes, as: UTF8.self)) otherwise; \(generator)"
            )
        }
    }

    @Test("mutated and random bytes never crash the reader; what it takes, Foundation takes to the same value")
    func fuzz() throws {
        var generator = SeededRandom.forTest()
        let alphabet = Array("{}[]:,\"\\/ubfnrt0123456789-+.eE aZ\u{01}".utf8) + [0xC3, 0xA9, 0xFF, 0xED, 0xA0, 0x80]
        let seeds = (0..<50).map { _ in JSONWriter.write(Self.randomValue(depth: 0, using: &generator)) }
        var accepted = 0
        for round in 0..<20_000 {
            var bytes = seeds[round % seeds.count]
            if round % 4 == 0 {
                bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                    alphabet.randomElement(using: &generator)!
                }
            } else {
                for _ in 0..<Int.random(in: 1...4, using: &generator) where !bytes.isEmpty {
                    let index = Int.random(in: 0..<bytes.count, using: &generator)
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0: bytes[index] = alphabet.randomElement(using: &generator)!
                    case 1: bytes.remove(at: index)
                    default: bytes.insert(alphabet.randomElement(using: &generator)!, at: index)
                    }
                }
            }
            guard let value = try? JSONReader.parse(bytes) else { continue }
            accepted += 1
            let text = String(decoding: bytes, as: UTF8.self)
            let foundation = try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)
            #expect(
                foundation.map { FoundationJSON.agrees(value, $0) } == true,
                "Foundation refuses or reads otherwise \(text); \(generator)"
            )
            #expect(try JSONReader.parse(JSONWriter.write(value)) == value, "\(text); \(generator)")
        }
        // The mutations must leave some documents valid, or the differential checks nothing.
        #expect(accepted > 1000, "\(generator)")
    }
}
