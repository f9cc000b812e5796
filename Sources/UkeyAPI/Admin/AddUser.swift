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
}
