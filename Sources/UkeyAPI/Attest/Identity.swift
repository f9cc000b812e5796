import UkeyCodec

extension Attest {
    /// The endorsement key, its certificate, and the attestation key (made under the EK on the
    /// first call, then kept sealed with the token's records; `renew` makes a new one).
    public enum Identity: APIMethod {
        public static let name = "io.ukey.Attest.Identity"
        public static let role: Role? = .admin
        public static let idl = """
            # The EK (marshalled TPM2B_PUBLIC, base64; algorithm rsa or ecc), its certificate from
            # NV (DER, base64; absent when the TPM has none), and the attestation key under it
            # (TPM2B_PUBLIC, base64) with its TPM name (hex).
            method Identity(renew: ?bool) -> (
              algorithm: string,
              ek: string,
              ekCertificate: ?string,
              ak: string,
              akName: string
            )
            """

        public struct Request: APIMessage, Equatable {
            public var renew: Bool?

            public init(renew: Bool? = nil) {
                self.renew = renew
            }
        }

        /// A new attestation key is recorded with its name; reading the identity is not.
        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            guard request.renew == true else { return [] }
            var subject: [String: JSONValue] = [:]
            if case .success(let reply) = outcome { subject["ak"] = .string(reply.akName) }
            return [AuditRecord("attest-new-key", subject, outcome)]
        }

        public struct Reply: APIMessage, Equatable {
            public var algorithm: String
            public var ek: Base64Bytes
            public var ekCertificate: Base64Bytes?
            public var ak: Base64Bytes
            public var akName: String

            public init(algorithm: String, ek: [UInt8], ekCertificate: [UInt8]?, ak: [UInt8], akName: String) {
                self.algorithm = algorithm
                self.ek = Base64Bytes(ek)
                self.ekCertificate = ekCertificate.map(Base64Bytes.init)
                self.ak = Base64Bytes(ak)
                self.akName = akName
            }
        }
    }
}
