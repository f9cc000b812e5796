extension Admin {
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
