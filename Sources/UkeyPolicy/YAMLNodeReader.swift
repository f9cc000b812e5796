import UkeyCore
import Yams

/// Reads typed values out of composed YAML nodes, collecting every problem with its place instead of
/// stopping at the first, so that `policy lint` can report them all in one run.
struct YAMLNodeReader {
    let file: String
    private(set) var diagnostics: [PolicyDiagnostic] = []

    /// Names are used in event data (`entity/component`), on the wire and in audit records:
    /// a conservative charset keeps them unambiguous in all three.
    static let nameCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    static let maxNameLength = 64
    static let maxPathLength = 4096

    init(file: String) { self.file = file }

    func location(_ node: Node?) -> SourceLocation {
        guard let mark = node?.mark else { return SourceLocation(file: file, line: 1, column: 1) }
        return SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    mutating func error(_ node: Node?, _ message: String) {
        diagnostics.append(PolicyDiagnostic(location(node), message))
    }

    mutating func error(at location: SourceLocation, _ message: String) {
        diagnostics.append(PolicyDiagnostic(location, message))
    }

    /// Anchors and aliases are refused: they let a small file expand into a huge document, and a
    /// policy has no need for them.
    private mutating func plain(_ node: Node) -> Bool {
        if node.anchor != nil {
            error(node, "anchors and aliases (& and *) are not allowed in a policy")
            return false
        }
        return true
    }

    /// A mapping whose keys must be among `allowed` and include `required`; unknown keys (typos)
    /// and duplicate keys are errors.
    mutating func mapping(
        _ node: Node,
        _ what: String,
        allowed: [String],
        required: [String]
    ) -> [String: (key: Node, value: Node)]? {
        guard plain(node) else { return nil }
        guard case .mapping(let mapping) = node else {
            error(node, "\(what) must be a mapping with the keys \(allowed.joined(separator: ", "))")
            return nil
        }
        var fields: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                error(key, "keys in \(what) must be plain words")
                continue
            }
            let name = scalar.string
            guard allowed.contains(name) else {
                var message = "unknown key '\(name)' in \(what)"
                if let near = Self.closest(to: name, in: allowed) { message += "; did you mean '\(near)'?" }
                message += " (expected one of: \(allowed.joined(separator: ", ")))"
                error(key, message)
                continue
            }
            if let first = fields[name] {
                error(key, "key '\(name)' appears twice in \(what) (first at line \(location(first.key).line))")
                continue
            }
            fields[name] = (key, value)
        }
        for name in required where fields[name] == nil {
            error(node, "\(what) lacks the required key '\(name)'")
        }
        return fields
    }

    mutating func sequence(_ node: Node, _ what: String) -> [Node]? {
        guard plain(node) else { return nil }
        if case .scalar(let scalar) = node, scalar.string.isEmpty || scalar.string == "null" || scalar.string == "~" {
            return []  // `users:` with nothing after it is an empty list
        }
        guard case .sequence(let sequence) = node else {
            error(node, "\(what) must be a list")
            return nil
        }
        return Array(sequence)
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard plain(node) else { return nil }
        guard case .scalar(let scalar) = node else {
            error(node, "\(what) must be a single value, not a list or mapping")
            return nil
        }
        guard !scalar.string.isEmpty else {
            error(node, "\(what) is empty")
            return nil
        }
        return scalar.string
    }

    /// A name: 1-64 characters of letters, digits, `.`, `_`, `-`.
    mutating func name(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        guard text.count <= Self.maxNameLength, text.allSatisfy({ Self.nameCharacters.contains($0) }) else {
            error(node, "\(what) '\(text)' must be 1-\(Self.maxNameLength) letters, digits, '.', '_' or '-'")
            return nil
        }
        return text
    }

    mutating func absolutePath(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        guard text.hasPrefix("/"), text.utf8.count <= Self.maxPathLength, !text.utf8.contains(0) else {
            error(node, "\(what) must be an absolute path (starting with '/'), got '\(text)'")
            return nil
        }
        return text
    }

    /// A non-negative decimal integer written without quotes.
    mutating func integer(_ node: Node, _ what: String, in range: ClosedRange<Int>) -> Int? {
        guard let text = string(node, what) else { return nil }
        guard case .scalar(let scalar) = node, scalar.style == .plain,
            text.count <= 10, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber), let value = Int(text)
        else {
            error(node, "\(what) must be a whole number, got '\(text)'")
            return nil
        }
        guard range.contains(value) else {
            error(node, "\(what) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
            return nil
        }
        return value
    }

    /// `true` or `false`, nothing else (YAML 1.1's yes/no/on/off are refused: a policy says what it means).
    mutating func boolean(_ node: Node, _ what: String) -> Bool? {
        guard let text = string(node, what) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default:
            error(node, "\(what) must be true or false, got '\(text)'")
            return nil
        }
    }

    mutating func digest(_ node: Node, _ what: String) -> Digest? {
        guard let text = string(node, what) else { return nil }
        do {
            return try Digest(parsing: text)
        } catch {
            self.error(node, "\(what): \(error.reason)")
            return nil
        }
    }

    mutating func oneOf<T: RawRepresentable & CaseIterable>(_ node: Node, _ what: String, _: T.Type) -> T?
    where T.RawValue == String {
        guard let text = string(node, what) else { return nil }
        guard let value = T(rawValue: text) else {
            let options = T.allCases.map(\.rawValue).joined(separator: " or ")
            error(node, "\(what) must be \(options), got '\(text)'")
            return nil
        }
        return value
    }

    /// The allowed word nearest to a typo, when it is near enough to be what was meant.
    static func closest(to word: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(word.lowercased(), $0)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, best.0.count / 3) else { return nil }
        return best.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.prefix(64))
        let b = Array(b.prefix(64))
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
