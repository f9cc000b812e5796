/// Keylime's operations, on the TPM ukeyd already holds: a swtpm serves one client, and a
/// hardware TPM's resource manager would let an agent in, but the attestation key's auth value
/// is ukeyd's, so every use of it goes through ukeyd (`io.ukey.Attest`).
extension TPM {
    /// The endorsement key and its certificate from NV (none when the TPM has none).
    public func endorsement() throws(TPMError) -> TPMEndorsement {
        try withContext { context throws(TPMError) in try context.endorsement() }
    }

    /// A new attestation key under the EK (its private part wrapped by the TPM).
    public func createAttestationKey(under algorithm: TPMEndorsement.Algorithm) throws(TPMError) -> TPMWrappedKey {
        try withContext { context throws(TPMError) in try context.createAttestationKeyUnderEndorsement(algorithm) }
    }

    /// TPM2_ActivateCredential with the AK and the EK: the secret, if both live in this TPM.
    public func activateCredential(
        key: TPMWrappedKey,
        algorithm: TPMEndorsement.Algorithm,
        credential: [UInt8],
        encryptedSecret: [UInt8]
    ) throws(TPMError) -> [UInt8] {
        try withContext { context throws(TPMError) in
            try context.activateCredential(
                key: key,
                algorithm: algorithm,
                credential: credential,
                encryptedSecret: encryptedSecret
            )
        }
    }

    /// A quote by the AK over `pcrs` of `bank` (a TPM_ALG_ID), with the values in tpm2-tools' layout.
    public func quote(
        key: TPMWrappedKey,
        algorithm: TPMEndorsement.Algorithm,
        nonce: [UInt8],
        pcrs: [Int],
        bank: UInt16
    ) throws(TPMError) -> TPMPCRQuote {
        guard !pcrs.isEmpty, pcrs.allSatisfy({ (0...23).contains($0) }) else {
            throw TPMError(local: "quote PCRs in 0-23", "Quote")
        }
        return try withContext { context throws(TPMError) in
            try context.quote(key: key, algorithm: algorithm, nonce: nonce, pcrs: pcrs, bank: bank)
        }
    }

    /// PCR 16 reset and extended once with `sha256`: Keylime's binding of the agent's key to its
    /// quotes (PCR 16 = H(0 || H(key))).
    public func bind(pcr16 sha256: [UInt8]) throws(TPMError) {
        try withContext { context throws(TPMError) in
            try context.resetPCR(16)
            try context.extend(pcr: 16, sha256: sha256)
        }
    }
}
