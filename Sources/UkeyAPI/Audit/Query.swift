import UkeyCodec

extension Audit {
    /// Records from `since` on, a page at a time; with `more: true`, then every new record as it
    /// becomes durable, until the client goes or the daemon stops.
    public enum Query: APIMethod {
        public static let name = "io.ukey.Audit.Query"
        public static let role: Role? = .admin
        public static let maxLimit = 1000
        public static let idl = """
            # Records with seq >= since (default 1), at most limit (1-1000, default 100),
            # optionally of one type; next is the seq to ask for next. Called with more,
            # it keeps streaming new records as they become durable.
            method Query(since: ?int, limit: ?int, type: ?string) -> (records: []object, next: int)
            """

        public struct Request: APIMessage, Equatable {
            public var since: Int?
            public var limit: Int?
            public var type: String?

            public init(since: Int? = nil, limit: Int? = nil, type: String? = nil) {
                self.since = since
                self.limit = limit
                self.type = type
            }

            public func validate() throws(APIError) {
                guard (since ?? 1) >= 0 else { throw .invalidParameter("since") }
                guard (1...Query.maxLimit).contains(limit ?? 100) else { throw .invalidParameter("limit") }
                try FieldLimits.check(type, "type", max: FieldLimits.name)
            }
        }

        public struct Reply: APIMessage, Equatable {
            /// The records as they are in the log (objects of the audit line format).
            public var records: [[String: JSONValue]]
            /// The `seq` to ask for next.
            public var next: Int

            public init(records: [[String: JSONValue]], next: Int) {
                self.records = records
                self.next = next
            }
        }
    }
}
