import CTSS2

/// What creating and using an ordinary (non-primary) object takes, whatever the object: a sealed
/// secret under the storage primary, an attestation key under the EK.
extension TPMContext {
    /// TPM2_Create under a loaded parent, authorised by `session` (a password or a policy
    /// session): the new object's public and private parts, copied out of ESYS's memory.
    func createObject(
        under parent: ESYS_TR,
        session: ESYS_TR,
        sensitive: inout TPM2B_SENSITIVE_CREATE,
        template: TPM2B_PUBLIC,
        _ operation: String
    ) throws(TPMError) -> (publicPart: TPM2B_PUBLIC, privatePart: TPM2B_PRIVATE) {
        var template = template
        var outside = TPM2B_DATA()
        var creationPCRs = TPML_PCR_SELECTION()
        var outPrivate: UnsafeMutablePointer<TPM2B_PRIVATE>?
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        var creationData: UnsafeMutablePointer<TPM2B_CREATION_DATA>?
        var creationHash: UnsafeMutablePointer<TPM2B_DIGEST>?
        var ticket: UnsafeMutablePointer<TPMT_TK_CREATION>?
        defer {
            Esys_Free(outPrivate)
            Esys_Free(outPublic)
            Esys_Free(creationData)
            Esys_Free(creationHash)
            Esys_Free(ticket)
        }
        try check(
            Esys_Create(
                esys,
                parent,
                session,
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &sensitive,
                &template,
                &outside,
                &creationPCRs,
                &outPrivate,
                &outPublic,
                &creationData,
                &creationHash,
                &ticket
            ),
            operation
        )
        guard let outPrivate, let outPublic else { throw TPMError(local: "the TPM returned no object", "Create") }
        return (outPublic.pointee, outPrivate.pointee)
    }

    /// Gives ESYS an object's auth value, derived from the token's secret under `label` (the
    /// label it was created with), so its later commands authorise with it.
    func setDerivedAuth(_ handle: ESYS_TR, _ label: String, _ operation: String) throws(TPMError) {
        var auth = TPM2B_AUTH()
        let value = secret.derive(label)
        auth.size = UInt16(value.count)
        withUnsafeMutableBytes(of: &auth.buffer) { $0.copyBytes(from: value) }
        defer { withUnsafeMutableBytes(of: &auth) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        try check(Esys_TR_SetAuth(esys, handle, &auth), operation)
    }
}
