import UkeyCodec

extension Attest {
    /// Binds a key to this host's quotes as Keylime expects: PCR 16 reset, then extended once
    /// with the SHA-256 of the key's PEM, so every quote carries H(0 || H(PEM)) in PCR 16.
    public enum BindKey: APIMethod {
        public static let name = "io.ukey.Attest.BindKey"
        public static let role: Role? = .admin
        public static let idl = """
            # PCR 16 reset and extended with this SHA-256 digest (hex): the agent's key bound to
            # its quotes. A policy that measures into register 16 cannot be served with it.
            method BindKey(digest: string) -> ()
            """

        public struct Request: APIMessage, Equatable {
            public var digest: String

            public init(digest: String) {
                self.digest = digest
            }

            public func validate() throws(APIError) {
                guard digest.utf8.count == 64, Hex.decode(digest) != nil else { throw .invalidParameter("digest") }
            }
        }

        public typealias Reply = Empty

        /// Rebinding PCR 16 changes what every later quote says: recorded.
        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            [AuditRecord("attest-bind-key", ["digest": .string(request.digest)], outcome)]
        }
    }
}
