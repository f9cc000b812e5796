extension Admin {
    public enum SetMode: APIMethod {
        public static let name = "io.ukey.Admin.SetMode"
        public static let role: Role? = .admin
        public static let modes: Set<String> = ["enforce", "audit"]
        public static let idl = """
            # enforce or audit.
            method SetMode(mode: string) -> (mode: string)
            """

        public struct Request: APIMessage, Equatable {
            public var mode: String

            public init(mode: String) {
                self.mode = mode
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(mode, "mode", in: SetMode.modes)
            }
        }

        public typealias Reply = Request

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            [AuditRecord("mode", ["mode": .string(request.mode)], outcome)]
        }
    }
}
