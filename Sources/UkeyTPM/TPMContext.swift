import CTSS2

/// One ESYS context on one TCTI (`swtpm:path=...`, `device:/dev/tpmrm0`). Not thread-safe and
/// not Sendable: a TPM runs one command at a time, so the `TPM` actor owns the only context and
/// commands never interleave. (Swift 6: an actor's deinit cannot touch its C pointers; this
/// class's can.)
final class TPMContext {
    private var tcti: OpaquePointer?
    private(set) var esys: OpaquePointer?
    let tctiConfiguration: String
    /// The attestation key while loaded: its handle and public point.
    var attestationKey: (handle: ESYS_TR, point: [UInt8])?

    init(tcti configuration: String) throws(TPMError) {
        tctiConfiguration = configuration
        try check(Tss2_TctiLdr_Initialize(configuration, &tcti), "opening the TPM at \(configuration)")
        let rc = Esys_Initialize(&esys, tcti, nil)
        guard rc == 0 else {
            Tss2_TctiLdr_Finalize(&tcti)
            throw TPMError(rc, "starting a session with the TPM at \(configuration)")
        }
        flushLeftoverTransients()
    }

    deinit {
        if let attestationKey { Esys_FlushContext(esys, attestationKey.handle) }
        Esys_Finalize(&esys)
        Tss2_TctiLdr_Finalize(&tcti)
    }

    /// Extends a SHA-256 PCR.
    func extend(pcr: Int, sha256: [UInt8]) throws(TPMError) {
        guard sha256.count == 32 else { throw TPMError(local: "a SHA-256 digest has 32 bytes, got \(sha256.count)", "PCR_Extend") }
        var values = TPML_DIGEST_VALUES()
        values.count = 1
        values.digests.0.hashAlg = UKEY_TPM2_ALG_SHA256
        withUnsafeMutableBytes(of: &values.digests.0.digest.sha256) { $0.copyBytes(from: sha256) }
        try check(Esys_PCR_Extend(esys, ESYS_TR(ESYS_TR_PCR0) + ESYS_TR(pcr), ESYS_TR(ESYS_TR_PASSWORD), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), &values), "PCR_Extend of PCR \(pcr)")
    }

    /// A SHA-256 PCR's value.
    func read(pcr: Int) throws(TPMError) -> [UInt8] {
        var selection = Self.selection([pcr])
        var counter: UInt32 = 0
        var selected: UnsafeMutablePointer<TPML_PCR_SELECTION>?
        var values: UnsafeMutablePointer<TPML_DIGEST>?
        try check(Esys_PCR_Read(esys, ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), &selection, &counter, &selected, &values), "PCR_Read of PCR \(pcr)")
        defer {
            Esys_Free(selected)
            Esys_Free(values)
        }
        guard let values, values.pointee.count == 1 else { throw TPMError(local: "the TPM returned no value for PCR \(pcr)", "PCR_Read") }
        let digest = values.pointee.digests.0
        return withUnsafeBytes(of: digest.buffer) { Array($0.prefix(Int(digest.size))) }
    }

    /// Random bytes from TPM2_GetRandom (at most 32 or so per command, so it loops).
    func random(count: Int) throws(TPMError) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            var bytes: UnsafeMutablePointer<TPM2B_DIGEST>?
            try check(Esys_GetRandom(esys, ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), ESYS_TR(ESYS_TR_NONE), UInt16(min(32, count - out.count)), &bytes), "GetRandom")
            defer { Esys_Free(bytes) }
            guard let bytes, bytes.pointee.size > 0 else { throw TPMError(local: "the TPM returned no random bytes", "GetRandom") }
            out += withUnsafeBytes(of: bytes.pointee.buffer) { Array($0.prefix(Int(bytes.pointee.size))) }
        }
        return out
    }
}
