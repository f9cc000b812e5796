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
        let (handle, point) = try loadedAttestationKey()
        let (attest, signature) = try signedQuote(by: handle, nonce: nonce, selection: Self.selection(pcrs))
        return TPMQuote(attest: attest, signature: signature, attestationKey: point)
    }

    /// TPM2_Quote by a loaded restricted signing key, in the key's own scheme: the TPMS_ATTEST and
    /// the marshalled TPMT_SIGNATURE (the form `tpm2_checkquote -s` reads).
    func signedQuote(
        by key: ESYS_TR,
        nonce: [UInt8],
        selection: TPML_PCR_SELECTION
    ) throws(TPMError) -> (attest: [UInt8], signature: [UInt8]) {
        guard nonce.count <= 64 else { throw TPMError(local: "the nonce is at most 64 bytes", "Quote") }
        var qualifying = TPM2B_DATA()
        qualifying.size = UInt16(nonce.count)
        withUnsafeMutableBytes(of: &qualifying.buffer) { $0.copyBytes(from: nonce) }
        var scheme = TPMT_SIG_SCHEME()
        scheme.scheme = UKEY_TPM2_ALG_NULL  // the key's own
        var selection = selection
        var attest: UnsafeMutablePointer<TPM2B_ATTEST>?
        var signature: UnsafeMutablePointer<TPMT_SIGNATURE>?
        try check(
            Esys_Quote(
                esys,
                key,
                ESYS_TR(ESYS_TR_PASSWORD),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &qualifying,
                &scheme,
                &selection,
                &attest,
                &signature
            ),
            "Quote"
        )
        defer {
            Esys_Free(attest)
            Esys_Free(signature)
        }
        guard let attest, let signature else { throw TPMError(local: "the TPM returned no quote", "Quote") }
        let attestBytes = withUnsafeBytes(of: attest.pointee.attestationData) {
            Array($0.prefix(Int(attest.pointee.size)))
        }
        var buffer = [UInt8](repeating: 0, count: MemoryLayout<TPMT_SIGNATURE>.size + 16)
        var offset = 0
        try check(
            Tss2_MU_TPMT_SIGNATURE_Marshal(signature, &buffer, buffer.count, &offset),
            "marshalling the quote's signature"
        )
        return (attestBytes, Array(buffer.prefix(offset)))
    }

    /// The attestation key, created on first use and then kept loaded.
    func loadedAttestationKey() throws(TPMError) -> (handle: ESYS_TR, point: [UInt8]) {
        if let attestationKey { return attestationKey }
        let created = try createPrimary(.attestation)
        attestationKey = created
        return created
    }

    static func selection(_ pcrs: [Int], bank: UInt16 = UKEY_TPM2_ALG_SHA256) -> TPML_PCR_SELECTION {
        var selection = TPML_PCR_SELECTION()
        selection.count = 1
        selection.pcrSelections.0.hash = bank
        selection.pcrSelections.0.sizeofSelect = 3
        withUnsafeMutableBytes(of: &selection.pcrSelections.0.pcrSelect) { bytes in
            for pcr in pcrs where (0...23).contains(pcr) { bytes[pcr / 8] |= UInt8(1 << (pcr % 8)) }
        }
        return selection
    }
}
