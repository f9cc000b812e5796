import UkeyStore

/// The one error type that leaves `UkeyToken`. A wrong PIN is not an error but a `PinVerdict`;
/// this is for bad input, missing things, and failures of the token itself.
public struct TokenError: Error, Hashable, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let notInitialized = Code("not-initialized")
        public static let alreadyInitialized = Code("already-initialized")
        /// The SO PIN is locked: the token is locked for good; recovery is re-initialisation.
        public static let tokenLocked = Code("token-locked")
        public static let unknownUser = Code("unknown-user")
        public static let userExists = Code("user-exists")
        public static let invalidPIN = Code("invalid-pin")
        public static let invalidName = Code("invalid-name")
        public static let invalidArgument = Code("invalid-argument")
        public static let unknownCertificate = Code("unknown-certificate")
        public static let invalidCSR = Code("invalid-csr")
        /// The sealed store failed (integrity, permissions, I/O); `reason` carries its message.
        public static let store = Code("store")
        public static let crypto = Code("crypto")
        /// The hardware behind a role (a TPM) cannot be reached or failed; `reason` says how.
        /// Nothing was changed; the call may succeed once the hardware is back.
        public static let unavailable = Code("unavailable")
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: Int

    public init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    init(_ error: StoreError, file: String = #fileID, line: Int = #line) {
        self.init(error.code == .unavailable ? .unavailable : .store, error.description, file: file, line: line)
    }

    public var description: String { reason }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
