/// Why the audit log cannot be written or does not verify. The message names the file and, for
/// integrity failures, the record (by its 1-based position, which is its expected `seq`).
public struct AuditError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case io
        case integrity
        case invalidArgument
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
