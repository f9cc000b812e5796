extension VTPM {
    /// The chain a guest's verifier checks its vTPM's EK certificate with: the EK certificate
    /// ukeyd had issued for the VM, the vTPM CA's and the root CA's (all public).
    public enum Certificate: APIMethod {
        public static let name = "io.ukey.VTPM.Certificate"
        public static let role: Role? = .user
        public static let idl = """
            # The EK certificate of entity's vTPM (its RSA EK's, in NV at 0x01c00002), then the
            # vTPM CA's and the root CA's (PEM): what `openssl verify -CAfile root -untrusted
            # vtpmCA` checks the guest's TPM with. endorsementECC: its ECC EK's; platform: its
            # platform certificate, when each was issued.
            method Certificate(entity: string) -> (
              endorsement: string,
              endorsementECC: ?string,
              platform: ?string,
              authority: string,
              root: string
            )
            """

        public struct Request: APIMessage, Equatable {
            public var entity: String

            public init(entity: String) {
                self.entity = entity
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(entity, "entity", max: FieldLimits.name)
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var endorsement: String
            public var endorsementECC: String?
            public var platform: String?
            public var authority: String
            public var root: String

            public init(
                endorsement: String,
                endorsementECC: String?,
                platform: String?,
                authority: String,
                root: String
            ) {
                self.endorsement = endorsement
                self.endorsementECC = endorsementECC
                self.platform = platform
                self.authority = authority
                self.root = root
            }
        }
    }
}
