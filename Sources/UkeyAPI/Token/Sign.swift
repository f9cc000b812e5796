import UkeyCodec

extension Token {
    /// Signs a digest with a user's own key, under that user's session.
    public enum Sign: APIMethod {
        public static let name = "io.ukey.Token.Sign"
        public static let role: Role? = .user
        public static let idl = """
            # Signs a 32-byte digest (base64; SHA-256 or SM3) with a user's own key; needs that
            # user's session. The key signs context + digest, never the digest alone: ECDSA P-256
            # over SHA-256 of those bytes (algorithm ecdsa-p256-sha256), or on an SM2 token SM2 with
            # SM3 and the token's SM2 ID (algorithm sm2-sm3); context (base64) is "ukey-token-sign-v1" and a NUL byte, so that no
            # signature made here is ever one over a quote or an audit checkpoint.
            # The root CA, sub-CA, attestation and audit keys are restricted and never sign caller data.
            method Sign(key: string, digest: string, session: ?string) -> (signature: string, algorithm: string, context: string)
            """

        public struct Request: APIMessage, Equatable {
            public var key: String
            public var digest: Base64Bytes
            public var session: String?

            public init(key: String, digest: [UInt8], session: String? = nil) {
                self.key = key
                self.digest = Base64Bytes(digest)
                self.session = session
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(key, "key", max: FieldLimits.name)
                guard digest.bytes.count <= 64 else { throw .invalidParameter("digest") }
                try FieldLimits.check(session, "session", max: FieldLimits.credential)
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var signature: Base64Bytes
            public var algorithm: String
            /// What the key signed before the digest.
            public var context: Base64Bytes

            public init(signature: [UInt8], algorithm: String, context: [UInt8]) {
                self.signature = Base64Bytes(signature)
                self.algorithm = algorithm
                self.context = Base64Bytes(context)
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            [AuditRecord("sign", ["key": .string(request.key)], outcome)]
        }
    }
}
