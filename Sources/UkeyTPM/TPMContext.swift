import CTSS2

/// One ESYS context on one TCTI (`swtpm:path=...`, `device:/dev/tpmrm0`). Not thread-safe and
/// not Sendable: a TPM runs one command at a time, so the `TPM` actor owns the only context and
/// commands never interleave. (Swift 6: an actor's deinit cannot touch its C pointers; this
/// class's can.)
final class TPMContext {
    private var tcti: OpaquePointer?
    private(set) var esys: OpaquePointer?
    let tctiConfiguration: String
    /// What makes ukey's objects in this TPM ukeyd's alone (`TPMObjectSecret`).
    let secret: TPMObjectSecret
    /// The attestation key while loaded: its handle and public point.
    var attestationKey: (handle: ESYS_TR, point: [UInt8])?
    /// The Keylime attestation key's saved context (TPM2_ContextSave), with its public area: it
    /// loads again without the EK (whose RSA primary costs the most of a quote), and holds no
    /// slot between quotes. A TPM reset voids it; it is then loaded afresh.
    var savedKeylimeKey: (publicArea: [UInt8], context: TPMS_CONTEXT)?

    init(tcti configuration: String, secret: TPMObjectSecret) throws(TPMError) {
        tctiConfiguration = configuration
        self.secret = secret
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
        guard sha256.count == 32 else {
            throw TPMError(local: "a SHA-256 digest has 32 bytes, got \(sha256.count)", "PCR_Extend")
        }
        try extend(pcr: pcr, digests: [(UKEY_TPM2_ALG_SHA256, sha256)])
    }

    /// Extends one PCR in several banks with one command (each digest the size of its bank's
    /// algorithm, which the caller checked), so the banks never disagree about what was extended.
    func extend(pcr: Int, digests: [(algorithm: UInt16, bytes: [UInt8])]) throws(TPMError) {
        var values = TPML_DIGEST_VALUES()
        let slots = MemoryLayout.size(ofValue: values.digests) / MemoryLayout<TPMT_HA>.stride
        let unionSize = MemoryLayout<TPMU_HA>.size
        guard !digests.isEmpty, digests.count <= slots,
            digests.allSatisfy({ !$0.bytes.isEmpty && $0.bytes.count <= unionSize })
        else {
            throw TPMError(local: "PCR_Extend takes 1-\(slots) digests of at most \(unionSize) bytes", "PCR_Extend")
        }
        values.count = UInt32(digests.count)
        withUnsafeMutableBytes(of: &values.digests) { raw in
            let entries = raw.bindMemory(to: TPMT_HA.self)
            for (index, digest) in digests.enumerated() {
                entries[index].hashAlg = digest.algorithm
                withUnsafeMutableBytes(of: &entries[index].digest) { $0.copyBytes(from: digest.bytes) }
            }
        }
        try check(
            Esys_PCR_Extend(
                esys,
                ESYS_TR(ESYS_TR_PCR0) + ESYS_TR(pcr),
                ESYS_TR(ESYS_TR_PASSWORD),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &values
            ),
            "PCR_Extend of PCR \(pcr)"
        )
    }

    /// A PCR's value in the `bank` bank (a TPM_ALG_ID; SHA-256 unless given).
    func read(pcr: Int, bank: UInt16 = UKEY_TPM2_ALG_SHA256) throws(TPMError) -> [UInt8] {
        let (_, values) = try pcrRead(Self.selection([pcr], bank: bank), "PCR_Read of PCR \(pcr)")
        guard values.count == 1 else {
            throw TPMError(local: "the TPM returned no value for PCR \(pcr)", "PCR_Read")
        }
        let digest = values.digests.0
        return withUnsafeBytes(of: digest.buffer) { Array($0.prefix(Int(digest.size))) }
    }

    /// One TPM2_PCR_Read: what the TPM answered for (at most eight of) the selection, and the
    /// values, copied out of ESYS's memory.
    func pcrRead(
        _ selection: TPML_PCR_SELECTION,
        _ operation: String = "PCR_Read"
    ) throws(TPMError) -> (selected: TPML_PCR_SELECTION, values: TPML_DIGEST) {
        var selection = selection
        var counter: UInt32 = 0
        var selected: UnsafeMutablePointer<TPML_PCR_SELECTION>?
        var values: UnsafeMutablePointer<TPML_DIGEST>?
        try check(
            Esys_PCR_Read(
                esys,
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &selection,
                &counter,
                &selected,
                &values
            ),
            operation
        )
        defer {
            Esys_Free(selected)
            Esys_Free(values)
        }
        guard let selected, let values else { throw TPMError(local: "the TPM returned no PCR values", operation) }
        return (selected.pointee, values.pointee)
    }

    /// Random bytes from TPM2_GetRandom (at most 32 or so per command, so it loops).
    func random(count: Int) throws(TPMError) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            var bytes: UnsafeMutablePointer<TPM2B_DIGEST>?
            try check(
                Esys_GetRandom(
                    esys,
                    ESYS_TR(ESYS_TR_NONE),
                    ESYS_TR(ESYS_TR_NONE),
                    ESYS_TR(ESYS_TR_NONE),
                    UInt16(min(32, count - out.count)),
                    &bytes
                ),
                "GetRandom"
            )
            defer { Esys_Free(bytes) }
            guard let bytes, bytes.pointee.size > 0 else {
                throw TPMError(local: "the TPM returned no random bytes", "GetRandom")
            }
            out += withUnsafeBytes(of: bytes.pointee.buffer) { Array($0.prefix(Int(bytes.pointee.size))) }
        }
        return out
    }
}
