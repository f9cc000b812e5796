import UkeyCodec

extension Attest {
    /// TPM2_ActivateCredential with the attestation key and the EK: the secret a verifier bound
    /// to the AK's name and encrypted to the EK.
    public enum ActivateCredential: APIMethod {
        public static let name = "io.ukey.Attest.ActivateCredential"
        public static let role: Role? = .admin
        public static let idl = """
            # The credential (a marshalled TPM2B_ID_OBJECT) and its encrypted seed (a marshalled
            # TPM2B_ENCRYPTED_SECRET), base64; the secret they carry, base64.
            method ActivateCredential(credential: string, encryptedSecret: string) -> (secret: string)
            """

        public struct Request: APIMessage, Equatable {
            public var credential: Base64Bytes
            public var encryptedSecret: Base64Bytes

            public init(credential: [UInt8], encryptedSecret: [UInt8]) {
                self.credential = Base64Bytes(credential)
                self.encryptedSecret = Base64Bytes(encryptedSecret)
            }

            public func validate() throws(APIError) {
                // TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET are each at most a few hundred bytes.
                guard (3...1024).contains(credential.bytes.count) else { throw .invalidParameter("credential") }
                guard (3...1024).contains(encryptedSecret.bytes.count) else {
                    throw .invalidParameter("encryptedSecret")
                }
            }
        }

        /// A verifier's challenge answered: recorded, as a key's use for someone else is.
        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            [AuditRecord("attest-activate-credential", [:], outcome)]
        }

        public struct Reply: APIMessage, Equatable {
            public var secret: Base64Bytes

            public init(secret: [UInt8]) {
                self.secret = Base64Bytes(secret)
            }
        }
    }
}
