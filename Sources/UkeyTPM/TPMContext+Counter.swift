import CTSS2

/// ukey's monotonic counter in the TPM: an NV index of type counter (TPM2_NV_DefineSpace with
/// TPM_NT_COUNTER), which only ever goes up (TPM2_NV_Increment) and survives everything but a
/// TPM clear. The sealed store records the value it was written at, so an older copy of the
/// state directory, put back, is behind the TPM's counter and refused as a rollback. Reads and
/// increments take the index's auth value (TPMA_NV_AUTHREAD, TPMA_NV_AUTHWRITE), derived from the
/// token's secret: another TPM user cannot move it (and so cannot stop ukeyd from starting).
extension TPMContext {
    /// NV index 0x01554B01 ("UK", in the owner range 0x01000000-0x01BFFFFF).
    static let counterIndex: TPM2_HANDLE = 0x0155_4B01

    /// The counter's value, defining (and starting) the counter if this TPM has none yet.
    func counterValue() throws(TPMError) -> UInt64 {
        // Each handle is closed before another is made: ESYS hands out the same object for the
        // same NV index, so a handle still open here would be closed twice.
        var index = try counterHandle()
        try authorize(index)
        var data: UnsafeMutablePointer<TPM2B_MAX_NV_BUFFER>?
        let rc = Esys_NV_Read(
            esys,
            index,
            index,
            ESYS_TR(ESYS_TR_PASSWORD),
            ESYS_TR(ESYS_TR_NONE),
            ESYS_TR(ESYS_TR_NONE),
            8,
            0,
            &data
        )
        Esys_TR_Close(esys, &index)
        defer { Esys_Free(data) }
        if rc & 0xFFF == UKEY_TPM2_RC_NV_UNINITIALIZED & 0xFFF {
            // Defined but never incremented (a define cut short): start it.
            return try incrementCounter()
        }
        try check(rc, "NV_Read of ukey's counter")
        guard let data, data.pointee.size == 8 else {
            throw TPMError(local: "the TPM's counter did not read as 8 bytes", "NV_Read")
        }
        return withUnsafeBytes(of: data.pointee.buffer) { $0.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
    }

    /// Adds one to the counter; returns the new value.
    @discardableResult
    func incrementCounter() throws(TPMError) -> UInt64 {
        var index = try counterHandle()
        try authorize(index)
        let rc = Esys_NV_Increment(
            esys,
            index,
            index,
            ESYS_TR(ESYS_TR_PASSWORD),
            ESYS_TR(ESYS_TR_NONE),
            ESYS_TR(ESYS_TR_NONE)
        )
        Esys_TR_Close(esys, &index)
        try check(rc, "NV_Increment of ukey's counter")
        return try counterValue()
    }

    /// The counter's ESYS handle, defining the index first if it does not exist.
    private func counterHandle() throws(TPMError) -> ESYS_TR {
        var handle = ESYS_TR(ESYS_TR_NONE)
        if Esys_TR_FromTPMPublic(
            esys,
            Self.counterIndex,
            ESYS_TR(ESYS_TR_NONE),
            ESYS_TR(ESYS_TR_NONE),
            ESYS_TR(ESYS_TR_NONE),
            &handle
        ) == 0 {
            return handle
        }
        var auth = counterAuth()
        defer { withUnsafeMutableBytes(of: &auth) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        var info = TPM2B_NV_PUBLIC()
        info.nvPublic.nvIndex = Self.counterIndex
        info.nvPublic.nameAlg = UKEY_TPM2_ALG_SHA256
        info.nvPublic.attributes = UKEY_NV_COUNTER_ATTRIBUTES
        info.nvPublic.dataSize = 8
        let rc = Esys_NV_DefineSpace(
            esys,
            ESYS_TR(ESYS_TR_RH_OWNER),
            ESYS_TR(ESYS_TR_PASSWORD),
            ESYS_TR(ESYS_TR_NONE),
            ESYS_TR(ESYS_TR_NONE),
            &auth,
            &info,
            &handle
        )
        try check(rc, "NV_DefineSpace of ukey's counter (index 0x\(String(Self.counterIndex, radix: 16)))")
        try authorize(handle)
        try check(
            Esys_NV_Increment(
                esys,
                handle,
                handle,
                ESYS_TR(ESYS_TR_PASSWORD),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE)
            ),
            "starting ukey's counter"
        )
        return handle
    }

    /// A new token takes the index for itself: one left by an earlier token on this TPM (whose
    /// secret is gone with its state directory) is undefined with the owner's authorization, to
    /// be defined again with this token's auth value by the next read (on a fresh ESYS context:
    /// tpm2-tss 3.2 keeps the undefined index's name and refuses the new index's authorization
    /// on this one). Called at Initialize only: at any other time a counter that refuses the
    /// token's auth is an error to report, never one to replace.
    func undefineCounterForNewToken() throws(TPMError) {
        var existing = ESYS_TR(ESYS_TR_NONE)
        guard
            Esys_TR_FromTPMPublic(
                esys,
                Self.counterIndex,
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &existing
            ) == 0
        else { return }
        let rc = Esys_NV_UndefineSpace(
            esys,
            ESYS_TR(ESYS_TR_RH_OWNER),
            existing,
            ESYS_TR(ESYS_TR_PASSWORD),
            ESYS_TR(ESYS_TR_NONE),
            ESYS_TR(ESYS_TR_NONE)
        )
        if rc != 0 { Esys_TR_Close(esys, &existing) }
        try check(
            rc,
            "NV_UndefineSpace of an earlier token's counter (index 0x\(String(Self.counterIndex, radix: 16)))"
        )
    }

    /// The counter's auth value, derived from the token's secret.
    private func counterAuth() -> TPM2B_AUTH {
        var auth = TPM2B_AUTH()
        let value = secret.derive("auth counter")
        auth.size = UInt16(value.count)
        withUnsafeMutableBytes(of: &auth.buffer) { $0.copyBytes(from: value) }
        return auth
    }

    /// Gives ESYS the counter's auth value for the handle's next commands.
    private func authorize(_ index: ESYS_TR) throws(TPMError) {
        var auth = counterAuth()
        defer { withUnsafeMutableBytes(of: &auth) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        try check(Esys_TR_SetAuth(esys, index, &auth), "setting the counter's authorization")
    }
}
