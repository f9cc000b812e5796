import UkeyCodec

extension Admin {
    public enum AddUser: APIMethod {
        public static let name = "io.ukey.Admin.AddUser"
        public static let role: Role? = .admin
        public static let idl = """
            method AddUser(user: string, pin: string, roles: ?[]string) -> (certificate: string)
            """

        public struct Request: APIMessage, Equatable {
            public var user: String
            public var pin: String
            public var roles: [String]?

            public init(user: String, pin: String, roles: [String] = []) {
                self.user = user
                self.pin = pin
                self.roles = roles
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(user, "user", max: FieldLimits.name)
                try FieldLimits.check(pin, "pin", max: FieldLimits.name)
                try FieldLimits.check(roles, "roles", max: FieldLimits.name, count: 256)
            }
        }

        public struct Reply: APIMessage, Equatable {
            /// PEM.
            public var certificate: String

            public init(certificate: String) {
                self.certificate = certificate
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            var subject: [String: JSONValue] = ["user": .string(request.user)]
            if let roles = request.roles { subject["roles"] = .string(roles.joined(separator: ",")) }
            return [AuditRecord("user-add", subject, outcome)]
        }
    }

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

    public enum UnblockPin: APIMethod {
        public static let name = "io.ukey.Admin.UnblockPin"
        public static let role: Role? = .admin
        public static let idl = """
            method UnblockPin(user: string, soPin: string, newPin: string) -> ()
            """

        public struct Request: APIMessage, Equatable {
            public var user: String
            public var soPIN: String
            public var newPIN: String

            enum CodingKeys: String, CodingKey {
                case user
                case soPIN = "soPin"
                case newPIN = "newPin"
            }

            public init(user: String, soPIN: String, newPIN: String) {
                self.user = user
                self.soPIN = soPIN
                self.newPIN = newPIN
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(user, "user", max: FieldLimits.name)
                try FieldLimits.check(soPIN, "soPin", max: FieldLimits.name)
                try FieldLimits.check(newPIN, "newPin", max: FieldLimits.name)
            }
        }

        public typealias Reply = Empty

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            [AuditRecord("unblock", ["user": .string(request.user)], outcome)]
        }
    }
}
