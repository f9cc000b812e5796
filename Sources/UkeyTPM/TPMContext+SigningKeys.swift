import CTSS2

extension TPMContext {
    /// Signs a SHA-256 digest with an unrestricted signing key (the audit key, the root CA key):
    /// an ECDSA P-256 primary from a fixed template, so a NULL hash-check ticket is accepted. The
    /// key is loaded for the one signature and flushed: these signatures are rare (checkpoints,
    /// certificates), and the TPM's slots are few.
    func sign(
        with template: Template,
        sha256 digest: [UInt8]
    ) throws(TPMError) -> (signature: [UInt8], publicKey: [UInt8]) {
        guard template.isUnrestrictedSigningKey else {
            throw TPMError(local: "\(template) is not an unrestricted signing key", "Sign")
        }
        guard digest.count == 32 else {
            throw TPMError(local: "a SHA-256 digest has 32 bytes, got \(digest.count)", "Sign")
        }
        let (key, point) = try createPrimary(template)
        defer { Esys_FlushContext(esys, key) }
        var message = TPM2B_DIGEST()
        message.size = 32
        withUnsafeMutableBytes(of: &message.buffer) { $0.copyBytes(from: digest) }
        var scheme = TPMT_SIG_SCHEME()
        scheme.scheme = UKEY_TPM2_ALG_NULL  // the key's own: ECDSA with SHA-256
        var validation = TPMT_TK_HASHCHECK()
        validation.tag = UKEY_TPM2_ST_HASHCHECK
        validation.hierarchy = UKEY_TPM2_RH_NULL
        var signature: UnsafeMutablePointer<TPMT_SIGNATURE>?
        try check(
            Esys_Sign(
                esys,
                key,
                ESYS_TR(ESYS_TR_PASSWORD),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &message,
                &scheme,
                &validation,
                &signature
            ),
            "signing with the \(template.keyName)"
        )
        defer { Esys_Free(signature) }
        guard let signature else { throw TPMError(local: "the TPM returned no signature", "Sign") }
        let ecdsa = signature.pointee.signature.ecdsa
        let r = withUnsafeBytes(of: ecdsa.signatureR.buffer) { Array($0.prefix(Int(ecdsa.signatureR.size))) }
        let s = withUnsafeBytes(of: ecdsa.signatureS.buffer) { Array($0.prefix(Int(ecdsa.signatureS.size))) }
        func padded(_ v: [UInt8]) -> [UInt8] { [UInt8](repeating: 0, count: max(0, 32 - v.count)) + v.suffix(32) }
        return (padded(r) + padded(s), point)
    }

    /// A signing key's public point.
    func signingKeyPoint(_ template: Template) throws(TPMError) -> [UInt8] {
        let (key, point) = try createPrimary(template)
        Esys_FlushContext(esys, key)
        return point
    }
}
