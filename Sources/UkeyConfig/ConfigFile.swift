import Foundation

/// A strict reader for the subset of TOML (toml.io, v1.0) that `ukeyd.toml` uses: `[section]`
/// headers, `key = value` lines with basic strings, integers, booleans or arrays of strings, and
/// `#` comments. Anything else is refused with its line number rather than guessed at, so a typo
/// never silently becomes a default.
public struct ConfigFile: Sendable, Hashable {
    public enum Value: Sendable, Hashable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
        case strings([String])
    }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    public static let maxBytes = 64 << 10

    /// Values by "section.key" ("key" at the top level).
    public private(set) var values: [String: Value] = [:]

    public init(parsing text: String) throws(ParseError) {
        guard text.utf8.count <= Self.maxBytes else {
            throw ParseError(line: 0, message: "the file is larger than \(Self.maxBytes) bytes")
        }
        var section = ""
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let line = Self.stripComment(String(raw)).trimmingCharacters(in: CharacterSet(charactersIn: " \t\r"))
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else {
                    throw ParseError(line: number, message: "a section header looks like [name]")
                }
                section = String(line.dropFirst().dropLast()).trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
                guard Self.isBareKey(section) else {
                    throw ParseError(
                        line: number,
                        message: "section name '\(section)' must be letters, digits, '_' or '-'"
                    )
                }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw ParseError(line: number, message: "expected 'key = value'")
            }
            let key = line[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            guard Self.isBareKey(key) else {
                throw ParseError(line: number, message: "key '\(key)' must be letters, digits, '_' or '-'")
            }
            let fullKey = section.isEmpty ? key : "\(section).\(key)"
            guard values[fullKey] == nil else { throw ParseError(line: number, message: "'\(fullKey)' is set twice") }
            values[fullKey] = try Self.value(
                line[line.index(after: equals)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t")),
                line: number
            )
        }
    }

    public subscript(key: String) -> Value? { values[key] }

    static func isBareKey(_ key: String) -> Bool {
        !key.isEmpty && key.count <= 64
            && key.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
                    || $0 == "-"
            }
    }

    /// Removes a `#` comment that is not inside a string.
    static func stripComment(_ line: String) -> String {
        var inString = false
        var escaped = false
        for (index, character) in zip(line.indices, line) {
            if inString {
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    inString = false
                }
            } else if character == "\"" {
                inString = true
            } else if character == "#" {
                return String(line[..<index])
            }
        }
        return line
    }

    static func value(_ text: String, line: Int) throws(ParseError) -> Value {
        if text == "true" { return .boolean(true) }
        if text == "false" { return .boolean(false) }
        if text.hasPrefix("\"") { return .string(try string(text, line: line)) }
        if text.hasPrefix("[") {
            guard text.hasSuffix("]") else {
                throw ParseError(line: line, message: "an array must close on the same line")
            }
            let inner = text.dropFirst().dropLast().trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            if inner.isEmpty { return .strings([]) }
            var items: [String] = []
            for part in splitArray(inner) {
                let item = part.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
                if item.isEmpty { continue }  // a trailing comma
                items.append(try string(item, line: line))
            }
            return .strings(items)
        }
        let digits = text.replacingOccurrences(of: "_", with: "")
        guard let number = Int(digits), digits.count <= 18 else {
            throw ParseError(
                line: line,
                message: "'\(text)' is not a string (in double quotes), a whole number, true/false or a list of strings"
            )
        }
        return .integer(number)
    }

    /// Splits on commas outside strings.
    static func splitArray(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var inString = false
        var escaped = false
        for character in text {
            if inString {
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    inString = false
                }
            } else if character == "\"" {
                inString = true
            } else if character == "," {
                parts.append(current)
                current = ""
                continue
            }
            current.append(character)
        }
        parts.append(current)
        return parts
    }

    /// A basic string with TOML's common escapes.
    static func string(_ text: String, line: Int) throws(ParseError) -> String {
        guard text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") else {
            throw ParseError(line: line, message: "a string is written in double quotes")
        }
        var out = ""
        var escaped = false
        for character in text.dropFirst().dropLast() {
            if escaped {
                switch character {
                case "\"": out.append("\"")
                case "\\": out.append("\\")
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: throw ParseError(line: line, message: "unsupported escape '\\\(character)'")
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                throw ParseError(line: line, message: "unexpected '\"' inside a string")
            } else {
                out.append(character)
            }
        }
        guard !escaped else { throw ParseError(line: line, message: "a string ends in a lone backslash") }
        return out
    }
}
