/// The one error type that leaves `UkeyCore`.
///
/// A denial (an untrusted entity, a mismatching digest) is a value, not this error: this is thrown
/// only for malformed input and broken invariants. Equality compares the code alone, so tests and
/// callers match on what went wrong, not on the wording of the reason.
public struct UkeyCoreError: Error, Hashable, CustomStringConvertible, Sendable {
    /// What kind of thing went wrong; stable across releases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A digest string or byte string that is not a valid digest.
        public static let invalidDigest = Code("invalid-digest")
        /// The named entity is not in the expected set.
        public static let unknownEntity = Code("unknown-entity")
        /// The entity has no component of that name.
        public static let unknownComponent = Code("unknown-component")
        /// `root` is the trusted root itself (s_1) and is never measured.
        public static let rootNotMeasurable = Code("root-not-measurable")
        /// The entities do not form a tree under `root` (unknown parent, cycle, duplicate).
        public static let invalidEntityTree = Code("invalid-entity-tree")
        /// A register index outside the bank.
        public static let invalidRegister = Code("invalid-register")
        /// Event-log bytes that do not parse as a TCG PC Client crypto-agile log.
        public static let malformedEventLog = Code("malformed-event-log")
    }

    public let code: Code
    /// A sentence a person can act on.
    public let reason: String
    public let file: String
    public let line: Int

    public init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String { reason }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
