extension Admin {
    /// A new identity certificate: for a CSR when the key lives on a smart card, else for the
    /// user's key in the token.
    public enum IssueCertificate: APIMethod {
        public static let name = "io.ukey.Admin.IssueCertificate"
        public static let role: Role? = .admin
        public static let idl = """
            # A new identity certificate for a user: for a CSR (PEM) when the key lives on a
            # smart card, else for the user's key in the token.
            method IssueCertificate(user: string, csr: ?string) -> (certificate: string)
            """

        public struct Request: APIMessage, Equatable {
            public var user: String
            /// PEM.
            public var csr: String?

            public init(user: String, csr: String? = nil) {
                self.user = user
                self.csr = csr
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(user, "user", max: FieldLimits.name)
                try FieldLimits.check(csr, "csr", max: 64 << 10)
            }
        }

        public typealias Reply = AddUser.Reply

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            [
                AuditRecord(
                    "certificate-issue",
                    ["user": .string(request.user), "csr": .bool(request.csr != nil)],
                    outcome
                )
            ]
        }
    }
}
