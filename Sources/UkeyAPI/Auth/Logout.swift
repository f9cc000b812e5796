extension Auth {
    /// Only the uid that logged in may end its session; any other gets SessionRequired.
    public enum Logout: APIMethod {
        public static let name = "io.ukey.Auth.Logout"
        public static let role: Role? = .hypervisor
        public static let idl = """
            # Ends the caller's uid's session (another uid's, or none: io.ukey.Token.SessionRequired).
            method Logout(session: string) -> ()
            """

        public struct Request: APIMessage, Equatable {
            public var session: String

            public init(session: String) {
                self.session = session
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(session, "session", max: FieldLimits.credential)
            }
        }

        public typealias Reply = Empty

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            [AuditRecord("logout", [:], outcome)]
        }
    }
}
