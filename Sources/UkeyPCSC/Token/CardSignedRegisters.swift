import Crypto
import UkeyCore
import UkeyToken
import X509

/// The soft registers with their quotes signed by the card (keys = "pcsc"): the same `ukey-v1`
/// quote, signed by the card's 9c key, whose certificate the root CA issued.
public struct CardSignedRegisters: RegistersRole {
    let records: SoftToken
    let binding: CardBinding

    public init(records: SoftToken, binding: CardBinding) {
        self.records = records
        self.binding = binding
    }

    public func extend(register: Int, digest: UkeyCore.Digest) async throws(TokenError) {
        try await records.extend(register: register, digest: digest)
    }
    public func extend(_ batch: [(register: Int, digest: UkeyCore.Digest)]) async -> (done: Int, failure: TokenError?) {
        await records.extend(batch)
    }
    public func read(register: Int, bank: HashAlgorithm) async throws(TokenError) -> UkeyCore.Digest {
        try await records.read(register: register, bank: bank)
    }
    public func reset(bootID: String) async throws(TokenError) -> UInt64 {
        try await records.reset(bootID: bootID)
    }
    public var usableRegisters: Set<Int> { records.usableRegisters }
    public var registersPersist: Bool { records.registersPersist }
    public var banks: [HashAlgorithm] { records.banks }
    public func missingBank(_ algorithm: HashAlgorithm) async -> String { await records.missingBank(algorithm) }

    public func quote(
        nonce: [UInt8],
        registers: [Int],
        eventLog: UkeyCore.Digest,
        bank: HashAlgorithm
    ) async throws(TokenError) -> SignedQuote {
        let body = try await records.quoteBody(nonce: nonce, registers: registers, eventLog: eventLog, bank: bank)
        let signature = try await binding.signWithCard(Array(SHA256.hash(data: body)))
        let certificate = try await attestationCertificate()
        return SignedQuote(
            format: UkeyQuote.format,
            quote: body,
            signature: signature,
            certificatePEM: try certificate.pemRepresentation,
            attestationKeyPEM: try binding.publicKey(.signature).pemRepresentation
        )
    }

    public func attestationCertificate() async throws(TokenError) -> TokenCertificate {
        .x509(
            try await binding.certificate("card-attestation", slot: .signature, purpose: .attestation, records: records)
        )
    }
}
