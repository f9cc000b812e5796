extension Token {
    public enum Info: APIMethod {
        public static let name = "io.ukey.Token.Info"
        public static let role: Role? = nil
        public static let idl = """
            # algorithms: the register banks (sha256, sm3, ...) and what the token's keys sign
            # with (ecdsa-p256-sha256, or sm2-sm3 for a token initialised with SM2 keys).
            method Info() -> (backend: string, serial: string, algorithms: []string, roles: Roles)
            """

        public typealias Request = Empty

        public struct Reply: APIMessage, Equatable {
            public var backend: String
            public var serial: String
            public var algorithms: [String]
            public var roles: Roles

            public init(backend: String, serial: String, algorithms: [String], roles: Roles) {
                self.backend = backend
                self.serial = serial
                self.algorithms = algorithms
                self.roles = roles
            }
        }
    }
}
