import CTSS2

extension TPMContext {
    /// Seals up to 128 bytes to this TPM: a keyed-hash data object under the storage primary
    /// (derived from the owner seed and a template carrying the token's secret, so nothing else
    /// needs keeping), with an auth value derived from that secret: another TPM user derives
    /// another storage primary, which cannot load the object, and without the auth value could
    /// not unseal it. The blob is the object's marshalled TPM2B_PUBLIC then TPM2B_PRIVATE; only
    /// the same TPM, and the same secret, open it.
    func seal(_ secret: [UInt8]) throws(TPMError) -> [UInt8] {
        guard (1...128).contains(secret.count) else {
            throw TPMError(local: "seal 1-128 bytes, not \(secret.count)", "Create")
        }
        let parent = try createStoragePrimary()
        defer { Esys_FlushContext(esys, parent) }
        var sensitive = TPM2B_SENSITIVE_CREATE()
        sensitive.sensitive.data.size = UInt16(secret.count)
        withUnsafeMutableBytes(of: &sensitive.sensitive.data.buffer) { $0.copyBytes(from: secret) }
        let auth = self.secret.derive("auth sealed object")
        sensitive.sensitive.userAuth.size = UInt16(auth.count)
        withUnsafeMutableBytes(of: &sensitive.sensitive.userAuth.buffer) { $0.copyBytes(from: auth) }
        var template = TPM2B_PUBLIC()
        template.publicArea.type = UKEY_TPM2_ALG_KEYEDHASH
        template.publicArea.nameAlg = UKEY_TPM2_ALG_SHA256
        template.publicArea.objectAttributes = UKEY_SEALED_OBJECT_ATTRIBUTES
        template.publicArea.parameters.keyedHashDetail.scheme.scheme = UKEY_TPM2_ALG_NULL
        // The secret's copy in this struct is wiped once the TPM holds it.
        defer { withUnsafeMutableBytes(of: &sensitive) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        var (outPublic, outPrivate) = try createObject(
            under: parent,
            session: ESYS_TR(ESYS_TR_PASSWORD),
            sensitive: &sensitive,
            template: template,
            "sealing to the TPM"
        )
        var buffer = [UInt8](repeating: 0, count: MemoryLayout<TPM2B_PUBLIC>.size + MemoryLayout<TPM2B_PRIVATE>.size)
        var offset = 0
        try check(
            Tss2_MU_TPM2B_PUBLIC_Marshal(&outPublic, &buffer, buffer.count, &offset),
            "marshalling the sealed object"
        )
        try check(
            Tss2_MU_TPM2B_PRIVATE_Marshal(&outPrivate, &buffer, buffer.count, &offset),
            "marshalling the sealed object"
        )
        return Array(buffer.prefix(offset))
    }

    /// Unseals a blob from `seal`. On another TPM (another machine, a cleared TPM) loading fails.
    func unseal(_ blob: [UInt8]) throws(TPMError) -> [UInt8] {
        var publicPart = TPM2B_PUBLIC()
        var privatePart = TPM2B_PRIVATE()
        var offset = 0
        guard blob.count <= 4096,
            Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, blob.count, &offset, &publicPart) == 0,
            Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, blob.count, &offset, &privatePart) == 0,
            offset == blob.count
        else {
            throw TPMError(local: "the sealed blob is damaged (it does not parse as a TPM object)", "Load")
        }
        let parent = try createStoragePrimary()
        defer { Esys_FlushContext(esys, parent) }
        var object: ESYS_TR = ESYS_TR(ESYS_TR_NONE)
        try check(
            Esys_Load(
                esys,
                parent,
                ESYS_TR(ESYS_TR_PASSWORD),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &privatePart,
                &publicPart,
                &object
            ),
            "loading the sealed object (was it sealed by this TPM?)"
        )
        defer { Esys_FlushContext(esys, object) }
        try setDerivedAuth(object, "auth sealed object", "setting the sealed object's authorization")
        var data: UnsafeMutablePointer<TPM2B_SENSITIVE_DATA>?
        try check(
            Esys_Unseal(esys, object, ESYS_TR(ESYS_TR_PASSWORD), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), &data),
            "unsealing"
        )
        guard let data else { throw TPMError(local: "the TPM returned nothing", "Unseal") }
        defer {
            withUnsafeMutableBytes(of: &data.pointee.buffer) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
            Esys_Free(data)
        }
        return withUnsafeBytes(of: data.pointee.buffer) { Array($0.prefix(Int(data.pointee.size))) }
    }

    private func createStoragePrimary() throws(TPMError) -> ESYS_TR {
        try createPrimary(.storage).handle
    }
}
