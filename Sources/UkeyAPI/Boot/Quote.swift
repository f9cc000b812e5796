extension Boot {
    /// A signed quote of the registers, with the certificates that vouch for its key.
    public enum Quote: APIMethod {
        public static let name = "io.ukey.Boot.Quote"
        public static let role: Role? = nil
        /// The longest nonce a quote binds.
        public static let maxNonce = 64
        public static let idl = """
            # A signed quote of the registers (all used ones when registers is absent).
            # nonce, quote and signature are base64; certificate (the attestation key's, issued by
            # the token-keys sub-CA), chain (that sub-CA's, issued by the root CA) and
            # attestationKey (the same key alone) are PEM. format "ukey-v1": quote is
            # docs/quote-format.md, signature DER (ECDSA or SM2). format "tpm2": quote is TPMS_ATTEST,
            # signature a TPMT_SIGNATURE, as tpm2_checkquote -m/-s read them. algorithm
            # "ecdsa-p256-sha256" or "sm2-sm3" says how it is signed; a verifier takes the
            # algorithm from the certificate, not from here. nonce: 1-64 bytes; registers:
            # distinct, 0-23. bank: the register bank quoted, sha256 (the default) or another the
            # registers have (sm3 with an SM3 bank; a TPM quotes sha256 only); another is an
            # InvalidParameter "bank".
            method Quote(nonce: string, registers: ?[]int, bank: ?string) -> (
              quote: string,
              signature: string,
              certificate: string,
              chain: string,
              attestationKey: string,
              format: string,
              algorithm: string
            )
            """

        public struct Request: APIMessage, Equatable {
            public var nonce: Base64Bytes
            public var registers: [Int]?
            /// The register bank quoted: sha256 when absent.
            public var bank: String?

            public init(nonce: [UInt8], registers: [Int]? = nil, bank: String? = nil) {
                self.nonce = Base64Bytes(nonce)
                self.registers = registers
                self.bank = bank
            }

            public func validate() throws(APIError) {
                guard (1...Quote.maxNonce).contains(nonce.bytes.count) else { throw .invalidParameter("nonce") }
                if let registers {
                    guard !registers.isEmpty, Set(registers).count == registers.count,
                        registers.allSatisfy({ (0..<24).contains($0) })
                    else { throw .invalidParameter("registers") }
                }
                try FieldLimits.check(bank, "bank", max: 16)
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var quote: Base64Bytes
            public var signature: Base64Bytes
            public var certificate: String
            public var chain: String
            public var attestationKey: String
            public var format: String
            public var algorithm: String

            public init(
                quote: [UInt8],
                signature: [UInt8],
                certificate: String,
                chain: String,
                attestationKey: String,
                format: String,
                algorithm: String
            ) {
                self.quote = Base64Bytes(quote)
                self.signature = Base64Bytes(signature)
                self.certificate = certificate
                self.chain = chain
                self.attestationKey = attestationKey
                self.format = format
                self.algorithm = algorithm
            }
        }
    }
}
