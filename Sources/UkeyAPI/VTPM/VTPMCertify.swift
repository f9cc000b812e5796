import UkeyCodec

extension VTPM {
    /// A certificate for the vTPM ukeyd is making now (`ukey-vtpm-certs`, which swtpm_setup runs
    /// as its certificate tool): only with the one-time ticket ukeyd gave that setup, so the
    /// vTPM CA certifies no key but the EK of a vTPM ukeyd itself made for a trusted start.
    public enum Certify: APIMethod {
        public static let name = "io.ukey.VTPM.Certify"
        public static let role: Role? = .admin
        public static let idl = """
            # The EK or platform certificate (DER, base64) of the vTPM ukeyd is setting up for
            # entity, with the ticket of that setup (admin role; ukey-vtpm-certs). kind: "ek"
            # or "platform". ek: the key as swtpm_setup gives it (RSA modulus in hex, or
            # x=...,y=...[,id=CURVE]). The TPM's manufacturer, model and version go into the
            # certificate's subjectAltName.
            method Certify(
              entity: string,
              ticket: string,
              kind: string,
              ek: string,
              tpmManufacturer: string,
              tpmModel: string,
              tpmVersion: string
            ) -> (certificate: string)
            """

        /// The longest EK parameter: an RSA-4096 modulus in hex.
        public static let maxKeyText = 1100

        public struct Request: APIMessage, Equatable {
            public var entity: String
            public var ticket: String
            public var kind: String
            public var ek: String
            public var tpmManufacturer: String
            public var tpmModel: String
            public var tpmVersion: String

            public init(
                entity: String,
                ticket: String,
                kind: String,
                ek: String,
                tpmManufacturer: String,
                tpmModel: String,
                tpmVersion: String
            ) {
                self.entity = entity
                self.ticket = ticket
                self.kind = kind
                self.ek = ek
                self.tpmManufacturer = tpmManufacturer
                self.tpmModel = tpmModel
                self.tpmVersion = tpmVersion
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(entity, "entity", max: FieldLimits.name)
                try FieldLimits.check(ticket, "ticket", max: FieldLimits.credential)
                try FieldLimits.check(kind, "kind", in: ["ek", "platform"])
                try FieldLimits.check(ek, "ek", max: maxKeyText)
                try FieldLimits.check(tpmManufacturer, "tpmManufacturer", max: FieldLimits.name)
                try FieldLimits.check(tpmModel, "tpmModel", max: FieldLimits.name)
                try FieldLimits.check(tpmVersion, "tpmVersion", max: FieldLimits.name)
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var certificate: Base64Bytes

            public init(certificate: [UInt8]) {
                self.certificate = Base64Bytes(certificate)
            }
        }

        /// What the vTPM CA signs is recorded (never the ticket).
        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            [AuditRecord("vtpm-certify", ["vm": .string(request.entity), "kind": .string(request.kind)], outcome)]
        }
    }
}
