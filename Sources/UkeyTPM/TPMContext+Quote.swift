import CTSS2

/// A TPM2_Quote as the API returns it: TPMS_ATTEST bytes, the TPMT_SIGNATURE (marshalled, the
/// form `tpm2_checkquote -s` reads) and the attestation key's public point.
public struct TPMQuote: Sendable, Hashable {
    public let attest: [UInt8]
    public let signature: [UInt8]
    /// The AK's public key, uncompressed SEC1 (04 || x || y).
    public let attestationKey: [UInt8]
}

extension TPMContext {
    /// Quotes SHA-256 PCRs with `nonce` as qualifying data, signed by the attestation key: an ECC
    /// P-256 restricted signing primary made from a fixed template under the owner hierarchy, so
    /// the same TPM always derives the same key (no state to keep). It is created on first use and
    /// kept loaded (one of a bare TPM's three transient slots) until the context closes.
    func quote(nonce: [UInt8], pcrs: [Int]) throws(TPMError) -> TPMQuote {
        guard nonce.count <= 64 else { throw TPMError(local: "the nonce is at most 64 bytes", "Quote") }
        if attestationKey == nil { attestationKey = try createAttestationKey() }
        let (handle, point) = attestationKey!
        var qualifying = TPM2B_DATA()
        qualifying.size = UInt16(nonce.count)
        withUnsafeMutableBytes(of: &qualifying.buffer) { $0.copyBytes(from: nonce) }
        var scheme = TPMT_SIG_SCHEME()
        scheme.scheme = UKEY_TPM2_ALG_NULL  // the key's own: ECDSA with SHA-256
        var selection = Self.selection(pcrs)
        var attest: UnsafeMutablePointer<TPM2B_ATTEST>?
        var signature: UnsafeMutablePointer<TPMT_SIGNATURE>?
        try check(Esys_Quote(esys, handle, ESYS_TR(ESYS_TR_PASSWORD), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), &qualifying, &scheme, &selection, &attest, &signature), "Quote")
        defer {
            Esys_Free(attest)
            Esys_Free(signature)
        }
        guard let attest, let signature else { throw TPMError(local: "the TPM returned no quote", "Quote") }
        let attestBytes = withUnsafeBytes(of: attest.pointee.attestationData) { Array($0.prefix(Int(attest.pointee.size))) }
        var buffer = [UInt8](repeating: 0, count: MemoryLayout<TPMT_SIGNATURE>.size + 16)
        var offset = 0
        try check(Tss2_MU_TPMT_SIGNATURE_Marshal(signature, &buffer, buffer.count, &offset), "marshalling the quote's signature")
        return TPMQuote(attest: attestBytes, signature: Array(buffer.prefix(offset)), attestationKey: point)
    }

    private func createAttestationKey() throws(TPMError) -> (ESYS_TR, [UInt8]) {
        var sensitive = TPM2B_SENSITIVE_CREATE()
        var template = TPM2B_PUBLIC()
        template.publicArea.type = UKEY_TPM2_ALG_ECC
        template.publicArea.nameAlg = UKEY_TPM2_ALG_SHA256
        template.publicArea.objectAttributes = UKEY_ATTESTATION_KEY_ATTRIBUTES
        template.publicArea.parameters.eccDetail.symmetric.algorithm = UKEY_TPM2_ALG_NULL
        template.publicArea.parameters.eccDetail.scheme.scheme = UKEY_TPM2_ALG_ECDSA
        template.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = UKEY_TPM2_ALG_SHA256
        template.publicArea.parameters.eccDetail.curveID = UKEY_TPM2_ECC_NIST_P256
        template.publicArea.parameters.eccDetail.kdf.scheme = UKEY_TPM2_ALG_NULL
        var outside = TPM2B_DATA()
        var creationPCRs = TPML_PCR_SELECTION()
        var handle: ESYS_TR = ESYS_TR(ESYS_TR_NONE)
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        var creationData: UnsafeMutablePointer<TPM2B_CREATION_DATA>?
        var creationHash: UnsafeMutablePointer<TPM2B_DIGEST>?
        var ticket: UnsafeMutablePointer<TPMT_TK_CREATION>?
        try check(Esys_CreatePrimary(esys, ESYS_TR(ESYS_TR_RH_OWNER), ESYS_TR(ESYS_TR_PASSWORD), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), &sensitive, &template, &outside, &creationPCRs, &handle, &outPublic, &creationData, &creationHash, &ticket), "creating the attestation key")
        defer {
            Esys_Free(outPublic)
            Esys_Free(creationData)
            Esys_Free(creationHash)
            Esys_Free(ticket)
        }
        guard let outPublic else { throw TPMError(local: "the TPM returned no public key", "creating the attestation key") }
        let ecc = outPublic.pointee.publicArea.unique.ecc
        let x = withUnsafeBytes(of: ecc.x.buffer) { Array($0.prefix(Int(ecc.x.size))) }
        let y = withUnsafeBytes(of: ecc.y.buffer) { Array($0.prefix(Int(ecc.y.size))) }
        func padded(_ v: [UInt8]) -> [UInt8] { [UInt8](repeating: 0, count: max(0, 32 - v.count)) + v }
        return (handle, [0x04] + padded(x) + padded(y))
    }

    static func selection(_ pcrs: [Int]) -> TPML_PCR_SELECTION {
        var selection = TPML_PCR_SELECTION()
        selection.count = 1
        selection.pcrSelections.0.hash = UKEY_TPM2_ALG_SHA256
        selection.pcrSelections.0.sizeofSelect = 3
        withUnsafeMutableBytes(of: &selection.pcrSelections.0.pcrSelect) { bytes in
            for pcr in pcrs where (0...23).contains(pcr) { bytes[pcr / 8] |= UInt8(1 << (pcr % 8)) }
        }
        return selection
    }
}
