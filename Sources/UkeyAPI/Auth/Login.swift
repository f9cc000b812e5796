import UkeyCodec

extension Auth {
    public enum Login: APIMethod {
        public static let name = "io.ukey.Auth.Login"
        public static let role: Role? = .hypervisor
        public static let idl = """
            # Checks the PIN (hypervisor role). expires is RFC 3339 UTC; certificate is PEM.
            # Without forVm: a session, valid only on connections of the uid that logged in
            # (another uid presenting it gets io.ukey.Token.SessionRequired, or reason session-of-another-uid
            # from Boot.Measure). With forVm: no session, but a one-time ticket to start that VM,
            # for the hypervisor to pass as Boot.Measure's session (a domain's XML may carry it:
            # its first Measure takes it for the calling process, and Boot.Started or
            # Boot.Release of the VM spends it; unused, it expires after 10 minutes).
            method Login(user: string, pin: string, forVm: ?string) -> (
              session: ?string,
              ticket: ?string,
              expires: string,
              roles: []string,
              certificate: string
            )
            """

        public struct Request: APIMessage, Equatable {
            public var user: String
            public var pin: String
            /// A start ticket for this VM instead of a session.
            public var forVm: String?

            public init(user: String, pin: String, forVm: String? = nil) {
                self.user = user
                self.pin = pin
                self.forVm = forVm
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(user, "user", max: FieldLimits.name)
                try FieldLimits.check(pin, "pin", max: FieldLimits.name)
                try FieldLimits.check(forVm, "forVm", max: FieldLimits.name)
            }
        }

        public struct Reply: APIMessage, Equatable {
            /// Without `forVm`: the session, the caller's uid's only.
            public var session: String?
            /// With `forVm`: the one-time ticket to start that VM.
            public var ticket: String?
            /// RFC 3339, UTC.
            public var expires: String
            public var roles: [String]
            public var certificate: String

            public init(session: String?, ticket: String?, expires: String, roles: [String], certificate: String) {
                self.session = session
                self.ticket = ticket
                self.expires = expires
                self.roles = roles
                self.certificate = certificate
            }
        }

        /// The PIN is never recorded; the outcome always is, failed or not.
        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            var subject: [String: JSONValue] = ["user": .string(request.user)]
            subject.record("forVm", request.forVm)
            switch outcome {
            case .success: subject["outcome"] = "success"
            case .failure(.badPIN(let left)):
                subject["outcome"] = "bad-pin"
                subject["retriesLeft"] = .int(left)
            case .failure(.pinLocked): subject["outcome"] = "locked"
            case .failure(.unknownUser): subject["outcome"] = "unknown-user"
            case .failure(let other): subject["outcome"] = .string(other.name)
            }
            return [AuditRecord("login", subject)]
        }
    }
}
