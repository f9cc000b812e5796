import UkeyCodec

extension Admin {
    /// A signed policy given in the call, or without one the newest of the policy directory.
    public enum LoadPolicy: APIMethod {
        public static let name = "io.ukey.Admin.LoadPolicy"
        public static let role: Role? = .admin
        /// The largest policy text a call may carry.
        public static let maxPolicyBytes = 256 << 20
        public static let idl = """
            # Loads a policy: signature is base64 DER ECDSA over the exact policy bytes, as
            # openssl dgst -sha256 -sign writes it. Refused for a bad signature, a version
            # not above the loaded one, or lint problems; the old policy stays in force.
            # Loads a signed policy given in the call, or, without parameters, the
            # highest-version signed policy of the policy directory (as SIGHUP does).
            # Refused (PolicyRejected, with the reason) unless signed, lint-clean and newer.
            method LoadPolicy(policy: ?string, signature: ?string) -> (version: ?int)
            """

        public struct Request: APIMessage, Equatable {
            /// nil: the policy directory's newest.
            public var policy: String?
            /// Required with `policy`.
            public var signature: Base64Bytes?

            public init(policy: String? = nil, signature: [UInt8]? = nil) {
                self.policy = policy
                self.signature = signature.map(Base64Bytes.init)
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(policy, "policy", max: LoadPolicy.maxPolicyBytes)
                guard policy == nil || signature != nil else { throw .invalidParameter("signature") }
                guard (signature?.bytes.count ?? 0) <= 256 else { throw .invalidParameter("signature") }
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var version: Int?

            public init(version: Int?) {
                self.version = version
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            var subject: [String: JSONValue] = [
                "source": request.policy == nil ? "policy-dir" : "call", "outcome": "rejected",
            ]
            if case .success(let reply) = outcome {
                subject["outcome"] = "loaded"
                if let version = reply.version { subject["version"] = .int(version) }
            }
            return [AuditRecord("policy-load", subject, outcome)]
        }
    }
}
