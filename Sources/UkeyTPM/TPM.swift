import CTSS2

/// A TPM 2.0 through tpm2-tss: the only owner of its ESYS context, so commands never interleave.
/// This is the first slice of the TPM backend (PCRs, quotes, sealing, randomness); the Ukey roles
/// on top of it (registers, keys, the store key protector) and its daemon configuration come next.
public actor TPM {
    private let context: TPMContext
    /// The TCTI it was opened with, e.g. `swtpm:path=/run/swtpm/sock` or `device:/dev/tpmrm0`.
    public nonisolated let tcti: String

    public init(tcti: String) throws(TPMError) {
        self.context = try TPMContext(tcti: tcti)
        self.tcti = tcti
    }

    public func extend(pcr: Int, sha256: [UInt8]) throws(TPMError) {
        guard (0...23).contains(pcr) else { throw TPMError(local: "PCR \(pcr) does not exist (0-23)", "PCR_Extend") }
        try context.extend(pcr: pcr, sha256: sha256)
    }

    public func read(pcr: Int) throws(TPMError) -> [UInt8] {
        guard (0...23).contains(pcr) else { throw TPMError(local: "PCR \(pcr) does not exist (0-23)", "PCR_Read") }
        return try context.read(pcr: pcr)
    }

    /// A TPM2_Quote of SHA-256 PCRs over `nonce` by the attestation key.
    public func quote(nonce: [UInt8], pcrs: [Int]) throws(TPMError) -> TPMQuote {
        guard !pcrs.isEmpty, pcrs.allSatisfy({ (0...23).contains($0) }) else { throw TPMError(local: "quote PCRs in 0-23", "Quote") }
        return try context.quote(nonce: nonce, pcrs: pcrs)
    }

    /// Seals a secret (the store key) to this TPM; `unseal` gives it back on this TPM only.
    public func seal(_ secret: [UInt8]) throws(TPMError) -> [UInt8] {
        try context.seal(secret)
    }

    public func unseal(_ blob: [UInt8]) throws(TPMError) -> [UInt8] {
        try context.unseal(blob)
    }

    public func random(count: Int) throws(TPMError) -> [UInt8] {
        guard (1...4096).contains(count) else { throw TPMError(local: "ask for 1-4096 bytes, not \(count)", "GetRandom") }
        return try context.random(count: count)
    }
}
