/// Reads a varlink interface description (varlink.org, "Interface Definition") into its
/// methods' parameter and reply shapes, with named types resolved: what the IDL test compares
/// the API's Swift types with.
struct IDLReader {
    struct Method {
        let name: String
        let parameters: Shape
        let reply: Shape
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private(set) var methods: [String: Method] = [:]
    private(set) var types: [String: Shape] = [:]
    private(set) var errors: [String: Shape] = [:]
    private(set) var interface = ""

    init(_ text: String) throws {
        // Comments run to the end of their line.
        let stripped = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            String(line.firstIndex(of: "#").map { line[..<$0] } ?? line)
        }.joined(separator: " ")
        var tokens = Tokens(stripped)
        var unresolvedMethods: [(String, Shape, Shape)] = []
        while let word = tokens.next() {
            switch word {
            case "interface":
                interface = try tokens.word()
            case "type":
                let name = try tokens.word()
                types[name] = try tokens.structure()
            case "method":
                let name = try tokens.word()
                let parameters = try tokens.structure()
                try tokens.expect("->")
                unresolvedMethods.append((name, parameters, try tokens.structure()))
            case "error":
                let name = try tokens.word()
                errors[name] = try tokens.structure()
            default:
                throw Failure(description: "unexpected '\(word)'")
            }
        }
        for (name, parameters, reply) in unresolvedMethods {
            methods[name] = Method(name: name, parameters: try resolve(parameters), reply: try resolve(reply))
        }
    }

    /// The shape with every named type replaced by its definition.
    private func resolve(_ shape: Shape) throws -> Shape {
        switch shape {
        case .string, .int, .bool, .float, .object: return shape
        case .array(let element): return .array(try resolve(element))
        case .map(let value): return .map(try resolve(value))
        case .structure(let fields):
            if fields.count == 1, let named = fields["$named"] {
                guard case .structure(let name) = named.shape, let key = name.keys.first, let type = types[key] else {
                    throw Failure(description: "an unknown type")
                }
                return try resolve(type)
            }
            return .structure(try fields.mapValues { Shape.Field(shape: try resolve($0.shape), optional: $0.optional) })
        }
    }
}

/// The IDL's tokens: words, and the punctuation `( ) , : ? [ ] ->`.
private struct Tokens {
    private var items: [String]
    private var index = 0

    init(_ text: String) {
        var items: [String] = []
        var word = ""
        var characters = Array(text)
        characters.append(" ")
        var i = 0
        while i < characters.count {
            let c = characters[i]
            if c == "-" && i + 1 < characters.count && characters[i + 1] == ">" {
                if !word.isEmpty { items.append(word) }
                word = ""
                items.append("->")
                i += 2
                continue
            }
            if "(),:?[]".contains(c) || c.isWhitespace {
                if !word.isEmpty { items.append(word) }
                word = ""
                if !c.isWhitespace { items.append(String(c)) }
            } else {
                word.append(c)
            }
            i += 1
        }
        self.items = items
    }

    mutating func next() -> String? {
        guard index < items.count else { return nil }
        defer { index += 1 }
        return items[index]
    }

    mutating func word() throws -> String {
        guard let word = next(), word.first?.isLetter == true else { throw IDLReader.Failure(description: "a name") }
        return word
    }

    mutating func expect(_ token: String) throws {
        guard next() == token else { throw IDLReader.Failure(description: "expected '\(token)'") }
    }

    private func peek() -> String? { index < items.count ? items[index] : nil }

    /// `( name: type, ... )`
    mutating func structure() throws -> Shape {
        try expect("(")
        var fields: [String: Shape.Field] = [:]
        while peek() != ")" {
            let name = try word()
            try expect(":")
            fields[name] = try field()
            if peek() == "," { index += 1 }
        }
        try expect(")")
        return .structure(fields)
    }

    mutating func field() throws -> Shape.Field {
        var optional = false
        if peek() == "?" {
            index += 1
            optional = true
        }
        return Shape.Field(shape: try type(), optional: optional)
    }

    mutating func type() throws -> Shape {
        switch peek() {
        case "(": return try structure()
        case "[":
            index += 1
            if peek() == "]" {
                index += 1
                return .array(try type())
            }
            try expect("string")
            try expect("]")
            return .map(try type())
        default:
            switch try word() {
            case "string": return .string
            case "int": return .int
            case "bool": return .bool
            case "float": return .float
            case "object": return .object
            // A named type, resolved once the whole description is read.
            case let name:
                return .structure([
                    "$named": .init(shape: .structure([name: .init(shape: .object, optional: false)]), optional: false)
                ])
            }
        }
    }
}
