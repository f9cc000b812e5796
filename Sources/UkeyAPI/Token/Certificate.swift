extension Token {
    public enum Certificate: APIMethod {
        public static let name = "io.ukey.Token.Certificate"
        public static let role: Role? = nil
        public static let idl = """
            # A PEM certificate: root-ca, token-keys-ca, user-ca, attestation, audit, policy-signer,
            # or a user's.
            method Certificate(name: string) -> (pem: string)
            """

        public struct Request: APIMessage, Equatable {
            public var name: String

            public init(name: String) {
                self.name = name
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(name, "name", max: FieldLimits.name)
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var pem: String

            public init(pem: String) {
                self.pem = pem
            }
        }
    }
}
