import UkeyCodec

/// What a call leaves in the audit log, as its method describes it: the record's type and its
/// flat subject (strings, integers, booleans). ukeyd adds the actor, and applies its limits:
/// execs are sampled and denials counted (`kind`).
public struct AuditRecord: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case plain
        /// An exec decision: an allowed one is recorded only when the settings sample it; a
        /// denial (or one that would be denied in audit mode, or could not be checked) is
        /// counted per guest channel so no guest can drown the log.
        case exec(allowed: Bool)
    }

    public var type: String
    public var kind: Kind
    /// Made only when the record is kept: an allowed exec that is not sampled (the exec path's
    /// common case) never builds one.
    private let makeSubject: @Sendable () -> [String: JSONValue]

    public var subject: [String: JSONValue] { makeSubject() }

    public init(_ type: String, _ subject: [String: JSONValue] = [:], kind: Kind = .plain) {
        self.init(type, kind: kind) { subject }
    }

    public init(_ type: String, kind: Kind, subject: @escaping @Sendable () -> [String: JSONValue]) {
        self.type = type
        self.kind = kind
        self.makeSubject = subject
    }

    /// A record of a call that may have failed: a failure adds the error's name, and its reason
    /// when it has one.
    public init<Reply>(_ type: String, _ subject: [String: JSONValue], _ outcome: Result<Reply, APIError>) {
        var subject = subject
        if case .failure(let error) = outcome { subject.merge(error.auditFields) { _, new in new } }
        self.init(type, subject)
    }

    public static func == (a: AuditRecord, b: AuditRecord) -> Bool {
        a.type == b.type && a.kind == b.kind && a.subject == b.subject
    }
}

extension APIError {
    /// The fields a failed call's record carries.
    public var auditFields: [String: JSONValue] {
        var fields: [String: JSONValue] = ["error": .string(name)]
        if let reason = parameters["reason"] { fields["reason"] = reason }
        return fields
    }
}

extension [String: JSONValue] {
    /// Sets `key` when `value` is there: a record carries what the call gave and leaves out
    /// what it did not.
    public mutating func record(_ key: String, _ value: String?) {
        if let value { self[key] = .string(value) }
    }
}
