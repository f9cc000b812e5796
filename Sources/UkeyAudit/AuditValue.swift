import UkeyCodec

/// A value in an audit record's `subject`: flat on purpose, so every record reads as one line
/// and an independent tool (`jq`) sees exactly the fields the verifier hashed.
public enum AuditValue: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral
{
    case string(String)
    case int(Int)
    case bool(Bool)

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    func write(to out: inout [UInt8]) {
        switch self {
        case .string(let s): JSONWriter.writeString(s, into: &out)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        }
    }
}
