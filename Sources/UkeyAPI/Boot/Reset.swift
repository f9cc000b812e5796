import UkeyCodec

extension Boot {
    /// A new boot session: registers zeroed, chain reset.
    public enum Reset: APIMethod {
        public static let name = "io.ukey.Boot.Reset"
        public static let role: Role? = .admin
        public static let idl = """
            # Starts a new boot session (admin role): registers zeroed, chain reset.
            method Reset() -> (bootId: string)
            """

        public typealias Request = Empty

        public struct Reply: APIMessage, Equatable {
            public var bootID: String

            enum CodingKeys: String, CodingKey {
                case bootID = "bootId"
            }

            public init(bootID: String) {
                self.bootID = bootID
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            var subject: [String: JSONValue] = [:]
            if case .success(let reply) = outcome { subject.record("bootId", reply.bootID) }
            return [AuditRecord("reset", subject, outcome)]
        }
    }
}
