extension Admin {
    /// Creates the token once: root CA, attestation and audit keys, SO PIN, policy signer.
    public enum Initialize: APIMethod {
        public static let name = "io.ukey.Admin.Initialize"
        public static let role: Role? = .admin
        public static let idl = """
            # Creates the token once: root CA, attestation and audit keys, SO PIN, and the
            # policy signer's certificate (PEM). Returns the root CA certificate (PEM).
            method Initialize(soPin: string, policySigner: string) -> (rootCertificate: string)
            """

        public struct Request: APIMessage, Equatable {
            public var soPIN: String
            /// The policy signer's certificate, PEM.
            public var policySigner: String

            enum CodingKeys: String, CodingKey {
                case soPIN = "soPin"
                case policySigner
            }

            public init(soPIN: String, policySigner: String) {
                self.soPIN = soPIN
                self.policySigner = policySigner
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(soPIN, "soPin", max: FieldLimits.name)
                try FieldLimits.check(policySigner, "policySigner", max: 64 << 10)
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var rootCertificate: String

            public init(rootCertificate: String) {
                self.rootCertificate = rootCertificate
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            [AuditRecord("initialize", [:], outcome)]
        }
    }
}
