import CTSS2

/// ukey's monotonic counter in the TPM: an NV index of type counter (TPM2_NV_DefineSpace with
/// TPM_NT_COUNTER), which only ever goes up (TPM2_NV_Increment) and survives everything but a
/// TPM clear. The sealed store records the value it was written at, so an older copy of the
/// state directory, put back, is behind the TPM's counter and refused as a rollback.
extension TPMContext {
    /// NV index 0x01554B01 ("UK", in the owner range 0x01000000-0x01BFFFFF).
    static let counterIndex: TPM2_HANDLE = 0x0155_4B01

    /// The counter's value, defining (and starting) the counter if this TPM has none yet.
    func counterValue() throws(TPMError) -> UInt64 {
        // Each handle is closed before another is made: ESYS hands out the same object for the
        // same NV index, so a handle still open here would be closed twice.
        var index = try counterHandle()
        var data: UnsafeMutablePointer<TPM2B_MAX_NV_BUFFER>?
        let rc = Esys_NV_Read(esys, index, index, ESYS_TR(ESYS_TR_PASSWORD), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), 8, 0, &data)
        Esys_TR_Close(esys, &index)
        defer { Esys_Free(data) }
        if rc & 0xFFF == UKEY_TPM2_RC_NV_UNINITIALIZED & 0xFFF {
            // Defined but never incremented (a define cut short): start it.
            return try incrementCounter()
        }
        try check(rc, "NV_Read of ukey's counter")
        guard let data, data.pointee.size == 8 else { throw TPMError(local: "the TPM's counter did not read as 8 bytes", "NV_Read") }
        return withUnsafeBytes(of: data.pointee.buffer) { $0.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
    }

    /// Adds one to the counter; returns the new value.
    @discardableResult
    func incrementCounter() throws(TPMError) -> UInt64 {
        var index = try counterHandle()
        let rc = Esys_NV_Increment(esys, index, index, ESYS_TR(ESYS_TR_PASSWORD), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE))
        Esys_TR_Close(esys, &index)
        try check(rc, "NV_Increment of ukey's counter")
        return try counterValue()
    }

    /// The counter's ESYS handle, defining the index first if it does not exist.
    private func counterHandle() throws(TPMError) -> ESYS_TR {
        var handle = ESYS_TR(ESYS_TR_NONE)
        if Esys_TR_FromTPMPublic(esys, Self.counterIndex, ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), &handle) == 0 {
            return handle
        }
        var auth = TPM2B_AUTH()
        var info = TPM2B_NV_PUBLIC()
        info.nvPublic.nvIndex = Self.counterIndex
        info.nvPublic.nameAlg = UKEY_TPM2_ALG_SHA256
        info.nvPublic.attributes = UKEY_NV_COUNTER_ATTRIBUTES
        info.nvPublic.dataSize = 8
        let rc = Esys_NV_DefineSpace(esys, ESYS_TR(ESYS_TR_RH_OWNER), ESYS_TR(ESYS_TR_PASSWORD), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), &auth, &info, &handle)
        try check(rc, "NV_DefineSpace of ukey's counter (index 0x\(String(Self.counterIndex, radix: 16)))")
        try check(Esys_NV_Increment(esys, handle, handle, ESYS_TR(ESYS_TR_PASSWORD), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE)), "starting ukey's counter")
        return handle
    }
}
