/// The one error type that leaves `UkeyStore`. Every message names the path it is about, so an
/// operator knows which file to look at; integrity failures say "integrity" so they can be grepped.
public struct StoreError: Error, Hashable, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A file was modified, truncated, or does not belong to this store.
        public static let integrity = Code("integrity")
        /// A protector could not unwrap a store key blob (the blob is damaged, or it belongs to
        /// another device key or TPM). `SealedStore` reports it as an integrity failure of the store.
        public static let unwrapFailed = Code("unwrap-failed")
        /// A directory or file is open to other users.
        public static let insecurePermissions = Code("insecure-permissions")
        /// No store exists where one was expected.
        public static let notFound = Code("not-found")
        /// A store already exists where a new one was to be created.
        public static let alreadyExists = Code("already-exists")
        /// The operating system refused an operation.
        public static let io = Code("io")
        /// The hardware the store is bound to (a TPM's counter) cannot be reached now.
        public static let unavailable = Code("unavailable")
        /// The store is behind its monotonic counter: an older copy was put back.
        public static let rollback = Code("rollback")
        /// A record is too large or badly named.
        public static let invalidRecord = Code("invalid-record")
    }

    public let code: Code
    public let path: String
    public let reason: String

    public init(_ code: Code, path: String, _ reason: String) {
        self.code = code
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
