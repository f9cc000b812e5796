import UkeyCore
import X509

/// The measurement-register role of a trusted root (architecture.md section 3): registers with extend
/// semantics for the current boot, and quotes of them signed by the attestation key.
public protocol RegistersRole: Sendable {
    /// Extends `register` with a measurement, in every bank.
    func extend(register: Int, digest: Digest) async throws(TokenError)
    /// Extends measurements in order, stopping at the first failure: how many were done, and why
    /// it stopped. A backend whose commands cost a hop (a TPM's thread) does them in one.
    func extend(_ batch: [(register: Int, digest: Digest)]) async -> (done: Int, failure: TokenError?)
    /// The current value of `register` in the `bank` bank.
    func read(register: Int, bank: HashAlgorithm) async throws(TokenError) -> Digest
    /// Zeroes every register for a new boot and returns the new boot counter.
    func reset(bootID: String) async throws(TokenError) -> UInt64
    /// Signs the selected registers of `bank` with `nonce` and the digest of the event log that
    /// explains them. A bank the backend cannot quote is refused (`invalidArgument`, naming it).
    func quote(
        nonce: [UInt8],
        registers: [Int],
        eventLog: Digest,
        bank: HashAlgorithm
    ) async throws(TokenError) -> SignedQuote
    /// The root CA's certificate of the key that signs this role's quotes.
    func attestationCertificate() async throws(TokenError) -> TokenCertificate
    /// The registers a policy may use on this backend (a TPM's firmware PCRs are not ours).
    var usableRegisters: Set<Int> { get }
    /// The banks every measurement extends, and the event log lists, smallest first.
    var banks: [HashAlgorithm] { get }
    /// Why a policy whose digests use `algorithm` cannot be served when `banks` lacks it: which
    /// banks this backend has and how to get the one missing.
    func missingBank(_ algorithm: HashAlgorithm) async -> String
    /// Whether the registers keep their values when ukeyd restarts. A TPM's PCRs do (they reset
    /// only with the host), so the daemon checks them against its journal instead of replaying it.
    var registersPersist: Bool { get }
}

extension RegistersRole {
    /// A quote of the SHA-256 bank, which every backend has.
    public func quote(nonce: [UInt8], registers: [Int], eventLog: Digest) async throws(TokenError) -> SignedQuote {
        try await quote(nonce: nonce, registers: registers, eventLog: eventLog, bank: .sha256)
    }
}

extension RegistersRole {
    public func extend(_ batch: [(register: Int, digest: Digest)]) async -> (done: Int, failure: TokenError?) {
        for (index, item) in batch.enumerated() {
            do {
                try await extend(register: item.register, digest: item.digest)
            } catch {
                return (index, error)
            }
        }
        return (batch.count, nil)
    }
}

/// A quote as the API returns it (architecture.md section 4, `io.ukey.Boot.Quote`).
public struct SignedQuote: Sendable, Hashable {
    /// "ukey-v1" (docs/quote-format.md) or "tpm2" (TPMS_ATTEST).
    public let format: String
    public let quote: [UInt8]
    /// "ukey-v1": DER ECDSA signature over SHA-256 of `quote`; "tpm2": a marshalled TPMT_SIGNATURE.
    public let signature: [UInt8]
    /// PEM certificate of the attestation key, issued by the token's root CA.
    public let certificatePEM: String
    /// The attestation key alone (PEM SubjectPublicKeyInfo), the form `tpm2_checkquote -u` takes.
    public let attestationKeyPEM: String
    /// How it is signed, as `VerificationKey` names it: "ecdsa-p256-sha256" (a TPM's, a card's,
    /// a P-256 soft token's) or "sm2-sm3". Said for the reader; a verifier takes the algorithm
    /// from the certificate, never from here.
    public let algorithm: String

    public init(
        format: String,
        quote: [UInt8],
        signature: [UInt8],
        certificatePEM: String,
        attestationKeyPEM: String,
        algorithm: String = "ecdsa-p256-sha256"
    ) {
        self.format = format
        self.quote = quote
        self.signature = signature
        self.certificatePEM = certificatePEM
        self.attestationKeyPEM = attestationKeyPEM
        self.algorithm = algorithm
    }
}
