/// What a remote verifier (Keylime) needs of a TPM: the endorsement key and its certificate, an
/// attestation key made under it, credential activation and quotes. Only a registers role on a
/// TPM has it (`TrustedRoot.remoteAttestation` is nil otherwise): a soft or card token has no
/// endorsement key a verifier could know.
public protocol RemoteAttestationRole: Sendable {
    func endorsement() async throws(TokenError) -> Endorsement
    /// A new attestation key under the EK (its private part wrapped by the TPM, safe to keep).
    func createAttestationKey(under algorithm: String) async throws(TokenError) -> WrappedAttestationKey
    func activateCredential(
        key: WrappedAttestationKey,
        algorithm: String,
        credential: [UInt8],
        encryptedSecret: [UInt8]
    ) async throws(TokenError) -> [UInt8]
    /// PCR 16 reset, then extended once with this SHA-256 digest (the agent's key, for Keylime).
    func bindDebugPCR(_ sha256: [UInt8]) async throws(TokenError)
    /// A quote of `pcrs` of `bank` (a TPM_ALG_ID) by the attestation key.
    func quote(
        key: WrappedAttestationKey,
        algorithm: String,
        nonce: [UInt8],
        pcrs: [Int],
        bank: UInt16
    ) async throws(TokenError) -> (attest: [UInt8], signature: [UInt8], pcrValues: [UInt8])
}

/// The endorsement key: its algorithm ("rsa" or "ecc"), marshalled TPM2B_PUBLIC and certificate.
public struct Endorsement: Sendable, Hashable {
    public let algorithm: String
    public let publicArea: [UInt8]
    public let certificate: [UInt8]?

    public init(algorithm: String, publicArea: [UInt8], certificate: [UInt8]?) {
        self.algorithm = algorithm
        self.publicArea = publicArea
        self.certificate = certificate
    }
}

/// An attestation key as the TPM wrapped it: marshalled TPM2B_PUBLIC and TPM2B_PRIVATE.
public struct WrappedAttestationKey: Sendable, Hashable {
    public let publicArea: [UInt8]
    public let privateArea: [UInt8]

    public init(publicArea: [UInt8], privateArea: [UInt8]) {
        self.publicArea = publicArea
        self.privateArea = privateArea
    }

    /// Stored as one record: the two parts, each with a 16-bit length.
    public var record: [UInt8] {
        func sized(_ bytes: [UInt8]) -> [UInt8] { [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes }
        return sized(publicArea) + sized(privateArea)
    }

    public init?(record: [UInt8]) {
        guard record.count >= 2 else { return nil }
        let first = Int(record[0]) << 8 | Int(record[1])
        guard record.count >= 4 + first else { return nil }
        let second = Int(record[2 + first]) << 8 | Int(record[3 + first])
        guard record.count == 4 + first + second, first > 0, second > 0 else { return nil }
        publicArea = Array(record[2..<(2 + first)])
        privateArea = Array(record[(4 + first)...])
    }
}
