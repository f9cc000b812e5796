import UkeyToken

/// The remote-attestation role on the TPM ukeyd holds (see `TPM+Endorsement.swift`).
public struct TPMRemoteAttestation: RemoteAttestationRole {
    let tpm: TPM

    public init(tpm: TPM) {
        self.tpm = tpm
    }

    public func endorsement() async throws(TokenError) -> Endorsement {
        let found = try await tpmCall { () async throws(TPMError) in try await tpm.endorsement() }
        return Endorsement(
            algorithm: found.algorithm.rawValue,
            publicArea: found.publicArea,
            certificate: found.certificate
        )
    }

    public func createAttestationKey(under algorithm: String) async throws(TokenError) -> WrappedAttestationKey {
        let kind = try Self.algorithm(algorithm)
        let key = try await tpmCall { () async throws(TPMError) in try await tpm.createAttestationKey(under: kind) }
        return WrappedAttestationKey(publicArea: key.publicArea, privateArea: key.privateArea)
    }

    public func activateCredential(
        key: WrappedAttestationKey,
        algorithm: String,
        credential: [UInt8],
        encryptedSecret: [UInt8]
    ) async throws(TokenError) -> [UInt8] {
        let kind = try Self.algorithm(algorithm)
        let wrapped = TPMWrappedKey(publicArea: key.publicArea, privateArea: key.privateArea)
        return try await tpmCall { () async throws(TPMError) in
            try await tpm.activateCredential(
                key: wrapped,
                algorithm: kind,
                credential: credential,
                encryptedSecret: encryptedSecret
            )
        }
    }

    public func bindDebugPCR(_ sha256: [UInt8]) async throws(TokenError) {
        guard sha256.count == 32 else { throw TokenError(.invalidArgument, "a SHA-256 digest has 32 bytes") }
        try await tpmCall { () async throws(TPMError) in try await tpm.bind(pcr16: sha256) }
    }

    public func quote(
        key: WrappedAttestationKey,
        algorithm: String,
        nonce: [UInt8],
        pcrs: [Int],
        bank: UInt16
    ) async throws(TokenError) -> (attest: [UInt8], signature: [UInt8], pcrValues: [UInt8]) {
        let kind = try Self.algorithm(algorithm)
        let wrapped = TPMWrappedKey(publicArea: key.publicArea, privateArea: key.privateArea)
        let quote = try await tpmCall { () async throws(TPMError) in
            try await tpm.quote(key: wrapped, algorithm: kind, nonce: nonce, pcrs: pcrs, bank: bank)
        }
        return (quote.attest, quote.signature, quote.pcrValues)
    }

    /// The TPM's failures as token errors that say it was the TPM; bad input stays bad input.
    private func tpmCall<T: Sendable>(_ body: () async throws(TPMError) -> T) async throws(TokenError) -> T {
        do {
            return try await body()
        } catch {
            throw error.code == 0
                ? TokenError(.invalidArgument, error.description)
                : TokenError(.unavailable, "the TPM (\(tpm.tcti)): \(error)")
        }
    }

    static func algorithm(_ name: String) throws(TokenError) -> TPMEndorsement.Algorithm {
        guard let algorithm = TPMEndorsement.Algorithm(rawValue: name) else {
            throw TokenError(.invalidArgument, "an endorsement key is rsa or ecc, not \(name)")
        }
        return algorithm
    }
}
