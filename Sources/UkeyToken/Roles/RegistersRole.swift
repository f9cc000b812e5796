import UkeyCore

/// The measurement-register role of a trusted root (DESIGN.md section 3): registers with extend
/// semantics for the current boot, and quotes of them signed by the attestation key.
public protocol RegistersRole: Sendable {
    /// Extends `register` with a measurement, in every bank.
    func extend(register: Int, digest: Digest) async throws(TokenError)
    /// The current value of `register` in the `bank` bank.
    func read(register: Int, bank: HashAlgorithm) async throws(TokenError) -> Digest
    /// Zeroes every register for a new boot and returns the new boot counter.
    func reset(bootID: String) async throws(TokenError) -> UInt64
    /// Signs the selected registers with `nonce` and the digest of the event log that explains them.
    func quote(nonce: [UInt8], registers: [Int], eventLog: Digest) async throws(TokenError) -> SignedQuote
}

/// A quote as the API returns it (DESIGN.md section 4, `io.ukey.Boot.Quote`).
public struct SignedQuote: Sendable, Hashable {
    /// "ukey-v1" (docs/quote-format.md) or "tpm2" (TPMS_ATTEST).
    public let format: String
    public let quote: [UInt8]
    /// DER ECDSA signature over SHA-256 of `quote`.
    public let signature: [UInt8]
    /// PEM certificate of the attestation key, issued by the token's root CA.
    public let certificatePEM: String

    public init(format: String, quote: [UInt8], signature: [UInt8], certificatePEM: String) {
        self.format = format
        self.quote = quote
        self.signature = signature
        self.certificatePEM = certificatePEM
    }
}
