import UkeyCodec

extension Attest {
    /// TPM2_Quote by the attestation key, in the form tpm2-tools writes and Keylime reads.
    public enum Quote: APIMethod {
        public static let name = "io.ukey.Attest.Quote"
        public static let role: Role? = .admin
        public static let banks = ["sha1", "sha256", "sha384", "sha512"]
        public static let idl = """
            # A quote over PCRs (0-23) of one bank (sha1, sha256, sha384, sha512) with the nonce
            # (1-64 bytes, base64) as qualifying data: the TPMS_ATTEST, the marshalled
            # TPMT_SIGNATURE and the PCR values in tpm2_quote's file layout, each base64.
            method Quote(nonce: string, pcrs: []int, bank: string) -> (
              attest: string,
              signature: string,
              pcrValues: string
            )
            """

        public struct Request: APIMessage, Equatable {
            public var nonce: Base64Bytes
            public var pcrs: [Int]
            public var bank: String

            public init(nonce: [UInt8], pcrs: [Int], bank: String = "sha256") {
                self.nonce = Base64Bytes(nonce)
                self.pcrs = pcrs
                self.bank = bank
            }

            public func validate() throws(APIError) {
                guard (1...64).contains(nonce.bytes.count) else { throw .invalidParameter("nonce") }
                guard !pcrs.isEmpty, pcrs.count <= 24, pcrs.allSatisfy({ (0...23).contains($0) }) else {
                    throw .invalidParameter("pcrs")
                }
                guard Quote.banks.contains(bank) else { throw .invalidParameter("bank") }
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var attest: Base64Bytes
            public var signature: Base64Bytes
            public var pcrValues: Base64Bytes

            public init(attest: [UInt8], signature: [UInt8], pcrValues: [UInt8]) {
                self.attest = Base64Bytes(attest)
                self.signature = Base64Bytes(signature)
                self.pcrValues = Base64Bytes(pcrValues)
            }
        }
    }
}
