import CTSS2

/// The TPM's endorsement key as a remote verifier (Keylime) knows it: the key's marshalled
/// TPM2B_PUBLIC and, where the manufacturer (or `swtpm_setup --create-ek-cert`) wrote one, its
/// certificate from the TCG's NV index.
public struct TPMEndorsement: Sendable, Hashable {
    public enum Algorithm: String, Sendable {
        case rsa
        case ecc
    }

    public let algorithm: Algorithm
    /// The marshalled TPM2B_PUBLIC.
    public let publicArea: [UInt8]
    /// DER, from NV index 0x01c00002 (RSA) or 0x01c0000a (ECC); nil when there is none.
    public let certificate: [UInt8]?
}

/// An attestation key made under the endorsement key: its marshalled TPM2B_PUBLIC and
/// TPM2B_PRIVATE (the private part wrapped by the EK's seed, so only this TPM loads it).
public struct TPMWrappedKey: Sendable, Hashable {
    public let publicArea: [UInt8]
    public let privateArea: [UInt8]

    public init(publicArea: [UInt8], privateArea: [UInt8]) {
        self.publicArea = publicArea
        self.privateArea = privateArea
    }
}

/// A quote as tpm2-tools writes it, which is the form Keylime reads: the TPMS_ATTEST, the
/// marshalled TPMT_SIGNATURE, and the PCR values in `tpm2_quote -o`'s layout.
public struct TPMPCRQuote: Sendable, Hashable {
    public let attest: [UInt8]
    public let signature: [UInt8]
    public let pcrValues: [UInt8]
}

extension TPMContext {
    /// The TCG's EK policy: PolicySecret(TPM_RH_ENDORSEMENT), the same digest in both templates.
    static let endorsementPolicy: [UInt8] = [
        0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
        0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
    ]

    /// Which EK this TPM vouches for: the one whose certificate is in NV (RSA first, as Keylime's
    /// default), or the RSA one when the TPM has no certificate at all.
    func endorsement() throws(TPMError) -> TPMEndorsement {
        let rsaCertificate = try readNV(UKEY_EK_CERT_NV_RSA)
        let eccCertificate = rsaCertificate == nil ? try readNV(UKEY_EK_CERT_NV_ECC) : nil
        let algorithm: TPMEndorsement.Algorithm = rsaCertificate == nil && eccCertificate != nil ? .ecc : .rsa
        let (handle, publicArea) = try createEndorsementKey(algorithm)
        Esys_FlushContext(esys, handle)
        return TPMEndorsement(
            algorithm: algorithm,
            publicArea: publicArea,
            certificate: rsaCertificate ?? eccCertificate
        )
    }

    /// The EK (created from its template: the same key every time), loaded; the caller flushes it.
    func createEndorsementKey(_ algorithm: TPMEndorsement.Algorithm) throws(TPMError) -> (ESYS_TR, [UInt8]) {
        var template = TPM2B_PUBLIC()
        template.publicArea.nameAlg = UKEY_TPM2_ALG_SHA256
        template.publicArea.objectAttributes = UKEY_ENDORSEMENT_KEY_ATTRIBUTES
        template.publicArea.authPolicy.size = 32
        withUnsafeMutableBytes(of: &template.publicArea.authPolicy.buffer) {
            $0.copyBytes(from: Self.endorsementPolicy)
        }
        switch algorithm {
        case .rsa:
            template.publicArea.type = UKEY_TPM2_ALG_RSA
            template.publicArea.parameters.rsaDetail.symmetric.algorithm = UKEY_TPM2_ALG_AES
            template.publicArea.parameters.rsaDetail.symmetric.keyBits.aes = 128
            template.publicArea.parameters.rsaDetail.symmetric.mode.aes = UKEY_TPM2_ALG_CFB
            template.publicArea.parameters.rsaDetail.scheme.scheme = UKEY_TPM2_ALG_NULL
            template.publicArea.parameters.rsaDetail.keyBits = 2048
            template.publicArea.parameters.rsaDetail.exponent = 0
            template.publicArea.unique.rsa.size = 256
        case .ecc:
            template.publicArea.type = UKEY_TPM2_ALG_ECC
            template.publicArea.parameters.eccDetail.symmetric.algorithm = UKEY_TPM2_ALG_AES
            template.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128
            template.publicArea.parameters.eccDetail.symmetric.mode.aes = UKEY_TPM2_ALG_CFB
            template.publicArea.parameters.eccDetail.scheme.scheme = UKEY_TPM2_ALG_NULL
            template.publicArea.parameters.eccDetail.curveID = UKEY_TPM2_ECC_NIST_P256
            template.publicArea.parameters.eccDetail.kdf.scheme = UKEY_TPM2_ALG_NULL
            template.publicArea.unique.ecc.x.size = 32
            template.publicArea.unique.ecc.y.size = 32
        }
        var sensitive = TPM2B_SENSITIVE_CREATE()
        var outside = TPM2B_DATA()
        var creationPCRs = TPML_PCR_SELECTION()
        var handle = ESYS_TR(ESYS_TR_NONE)
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        var creationData: UnsafeMutablePointer<TPM2B_CREATION_DATA>?
        var creationHash: UnsafeMutablePointer<TPM2B_DIGEST>?
        var ticket: UnsafeMutablePointer<TPMT_TK_CREATION>?
        try check(
            Esys_CreatePrimary(
                esys,
                ESYS_TR(ESYS_TR_RH_ENDORSEMENT),
                ESYS_TR(ESYS_TR_PASSWORD),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &sensitive,
                &template,
                &outside,
                &creationPCRs,
                &handle,
                &outPublic,
                &creationData,
                &creationHash,
                &ticket
            ),
            "creating the endorsement key"
        )
        defer {
            Esys_Free(outPublic)
            Esys_Free(creationData)
            Esys_Free(creationHash)
            Esys_Free(ticket)
        }
        guard let outPublic else {
            Esys_FlushContext(esys, handle)
            throw TPMError(local: "the TPM returned no endorsement key", "CreatePrimary")
        }
        do throws(TPMError) {
            return (handle, try Self.marshal(outPublic.pointee))
        } catch {
            Esys_FlushContext(esys, handle)
            throw error
        }
    }

    /// A policy session that satisfies the EK's policy (PolicySecret with the endorsement
    /// hierarchy's empty auth value); used once, then flushed by the caller.
    func endorsementSession() throws(TPMError) -> ESYS_TR {
        var symmetric = TPMT_SYM_DEF()
        symmetric.algorithm = UKEY_TPM2_ALG_NULL
        var session = ESYS_TR(ESYS_TR_NONE)
        try check(
            Esys_StartAuthSession(
                esys,
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                nil,
                UKEY_TPM2_SE_POLICY,
                &symmetric,
                UKEY_TPM2_ALG_SHA256,
                &session
            ),
            "starting the endorsement key's policy session"
        )
        var timeout: UnsafeMutablePointer<TPM2B_TIMEOUT>?
        var ticket: UnsafeMutablePointer<TPMT_TK_AUTH>?
        let rc = Esys_PolicySecret(
            esys,
            ESYS_TR(ESYS_TR_RH_ENDORSEMENT),
            session,
            ESYS_TR(ESYS_TR_PASSWORD),
            ESYS_TR(ESYS_TR_NONE),
            ESYS_TR(ESYS_TR_NONE),
            nil,
            nil,
            nil,
            0,
            &timeout,
            &ticket
        )
        Esys_Free(timeout)
        Esys_Free(ticket)
        guard rc == 0 else {
            Esys_FlushContext(esys, session)
            throw TPMError(rc, "PolicySecret(endorsement)")
        }
        return session
    }

    /// Makes a new attestation key under the EK: RSA 2048, restricted signing with RSASSA-SHA256
    /// (the signing scheme Keylime's verifier accepts by default), its auth value derived from the
    /// token's secret, so only this ukeyd can use it.
    func createAttestationKeyUnderEndorsement(
        _ algorithm: TPMEndorsement.Algorithm
    ) throws(TPMError) -> TPMWrappedKey {
        let (ek, _) = try createEndorsementKey(algorithm)
        defer { Esys_FlushContext(esys, ek) }
        let session = try endorsementSession()
        defer { Esys_FlushContext(esys, session) }
        var sensitive = TPM2B_SENSITIVE_CREATE()
        let auth = secret.derive("auth keylime attestation key")
        sensitive.sensitive.userAuth.size = UInt16(auth.count)
        withUnsafeMutableBytes(of: &sensitive.sensitive.userAuth.buffer) { $0.copyBytes(from: auth) }
        defer { withUnsafeMutableBytes(of: &sensitive) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        var template = TPM2B_PUBLIC()
        template.publicArea.type = UKEY_TPM2_ALG_RSA
        template.publicArea.nameAlg = UKEY_TPM2_ALG_SHA256
        template.publicArea.objectAttributes = UKEY_ATTESTATION_KEY_ATTRIBUTES
        template.publicArea.parameters.rsaDetail.symmetric.algorithm = UKEY_TPM2_ALG_NULL
        template.publicArea.parameters.rsaDetail.scheme.scheme = UKEY_TPM2_ALG_RSASSA
        template.publicArea.parameters.rsaDetail.scheme.details.rsassa.hashAlg = UKEY_TPM2_ALG_SHA256
        template.publicArea.parameters.rsaDetail.keyBits = 2048
        var (outPublic, outPrivate) = try createObject(
            under: ek,
            session: session,
            sensitive: &sensitive,
            template: template,
            "creating the attestation key under the endorsement key"
        )
        var privateBytes = [UInt8](repeating: 0, count: MemoryLayout<TPM2B_PRIVATE>.size + 8)
        var offset = 0
        try check(
            Tss2_MU_TPM2B_PRIVATE_Marshal(&outPrivate, &privateBytes, privateBytes.count, &offset),
            "marshalling the attestation key"
        )
        return TPMWrappedKey(
            publicArea: try Self.marshal(outPublic),
            privateArea: Array(privateBytes.prefix(offset))
        )
    }

    /// Loads the attestation key under the EK, with its auth value set; the caller flushes it.
    func loadAttestationKey(
        _ key: TPMWrappedKey,
        under algorithm: TPMEndorsement.Algorithm
    ) throws(TPMError) -> ESYS_TR {
        var inPublic = TPM2B_PUBLIC()
        var inPrivate = TPM2B_PRIVATE()
        var offset = 0
        try check(
            Tss2_MU_TPM2B_PUBLIC_Unmarshal(key.publicArea, key.publicArea.count, &offset, &inPublic),
            "reading the attestation key's public area"
        )
        offset = 0
        try check(
            Tss2_MU_TPM2B_PRIVATE_Unmarshal(key.privateArea, key.privateArea.count, &offset, &inPrivate),
            "reading the attestation key's private area"
        )
        let (ek, _) = try createEndorsementKey(algorithm)
        defer { Esys_FlushContext(esys, ek) }
        let session = try endorsementSession()
        defer { Esys_FlushContext(esys, session) }
        var handle = ESYS_TR(ESYS_TR_NONE)
        try check(
            Esys_Load(
                esys,
                ek,
                session,
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &inPrivate,
                &inPublic,
                &handle
            ),
            "loading the attestation key"
        )
        do throws(TPMError) {
            try setKeylimeKeyAuth(handle)
        } catch {
            Esys_FlushContext(esys, handle)
            throw error
        }
        return handle
    }

    /// The attestation key loaded for one command (the caller flushes it): from its saved context
    /// when there is one for this key, else under the EK, and then its context saved.
    func loadedKeylimeKey(_ key: TPMWrappedKey, under algorithm: TPMEndorsement.Algorithm) throws(TPMError) -> ESYS_TR {
        if let saved = savedKeylimeKey, saved.publicArea == key.publicArea {
            var context = saved.context
            var handle = ESYS_TR(ESYS_TR_NONE)
            if Esys_ContextLoad(esys, &context, &handle) == 0 {
                do throws(TPMError) {
                    try setKeylimeKeyAuth(handle)
                    return handle
                } catch {
                    Esys_FlushContext(esys, handle)
                    throw error
                }
            }
            savedKeylimeKey = nil  // the TPM was reset since: load it under the EK again
        }
        let handle = try loadAttestationKey(key, under: algorithm)
        var saved: UnsafeMutablePointer<TPMS_CONTEXT>?
        if Esys_ContextSave(esys, handle, &saved) == 0, let saved {
            savedKeylimeKey = (key.publicArea, saved.pointee)
        }
        Esys_Free(saved)
        return handle
    }

    func setKeylimeKeyAuth(_ handle: ESYS_TR) throws(TPMError) {
        try setDerivedAuth(handle, "auth keylime attestation key", "setting the attestation key's authorization")
    }

    /// TPM2_ActivateCredential: the secret a verifier bound to the AK's name and encrypted to the
    /// EK. Only a TPM holding both keys recovers it, which is what proves they live together.
    func activateCredential(
        key: TPMWrappedKey,
        algorithm: TPMEndorsement.Algorithm,
        credential: [UInt8],
        encryptedSecret: [UInt8]
    ) throws(TPMError) -> [UInt8] {
        var blob = TPM2B_ID_OBJECT()
        var secretIn = TPM2B_ENCRYPTED_SECRET()
        var offset = 0
        try check(
            Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(credential, credential.count, &offset, &blob),
            "reading the credential"
        )
        guard offset == credential.count else {
            throw TPMError(local: "the credential has bytes after its TPM2B_ID_OBJECT", "ActivateCredential")
        }
        offset = 0
        try check(
            Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(encryptedSecret, encryptedSecret.count, &offset, &secretIn),
            "reading the credential's encrypted secret"
        )
        guard offset == encryptedSecret.count else {
            throw TPMError(local: "the secret has bytes after its TPM2B_ENCRYPTED_SECRET", "ActivateCredential")
        }
        let ak = try loadAttestationKey(key, under: algorithm)
        defer { Esys_FlushContext(esys, ak) }
        let (ek, _) = try createEndorsementKey(algorithm)
        defer { Esys_FlushContext(esys, ek) }
        let session = try endorsementSession()
        defer { Esys_FlushContext(esys, session) }
        var certInfo: UnsafeMutablePointer<TPM2B_DIGEST>?
        try check(
            Esys_ActivateCredential(
                esys,
                ak,
                ek,
                ESYS_TR(ESYS_TR_PASSWORD),
                session,
                ESYS_TR(ESYS_TR_NONE),
                &blob,
                &secretIn,
                &certInfo
            ),
            "ActivateCredential"
        )
        defer { Esys_Free(certInfo) }
        guard let certInfo else { throw TPMError(local: "the TPM returned no secret", "ActivateCredential") }
        return withUnsafeBytes(of: certInfo.pointee.buffer) { Array($0.prefix(Int(certInfo.pointee.size))) }
    }

    /// TPM2_Quote by the attestation key over `pcrs` of one bank, with the PCR values read right
    /// after (a PCR extended in between shows as a mismatch to the verifier, never as a pass).
    func quote(
        key: TPMWrappedKey,
        algorithm: TPMEndorsement.Algorithm,
        nonce: [UInt8],
        pcrs: [Int],
        bank: UInt16
    ) throws(TPMError) -> TPMPCRQuote {
        guard nonce.count <= 64 else { throw TPMError(local: "the nonce is at most 64 bytes", "Quote") }
        let ak = try loadedKeylimeKey(key, under: algorithm)
        defer { Esys_FlushContext(esys, ak) }
        let (attest, signature) = try signedQuote(by: ak, nonce: nonce, selection: Self.selection(pcrs, bank: bank))
        return TPMPCRQuote(
            attest: attest,
            signature: signature,
            pcrValues: try pcrValuesFile(Self.selection(pcrs, bank: bank))
        )
    }

    /// The PCR values of a selection in the layout `tpm2_quote -o` writes (and Keylime reads):
    /// the TPML_PCR_SELECTION as the C structure, a 32-bit count, then that many TPML_DIGEST
    /// structures, each one PCR_Read's answer (at most eight digests a call).
    func pcrValuesFile(_ selection: TPML_PCR_SELECTION) throws(TPMError) -> [UInt8] {
        var remaining = selection
        var digests: [TPML_DIGEST] = []
        while digests.count < 64 {
            let left = withUnsafeBytes(of: remaining.pcrSelections.0.pcrSelect) { $0.prefix(3).contains { $0 != 0 } }
            guard left else { break }
            let (selected, values) = try pcrRead(remaining)
            guard values.count > 0 else { throw TPMError(local: "the TPM returned no PCR values", "PCR_Read") }
            digests.append(values)
            // Drop what this read answered from what is left to read.
            let answered = withUnsafeBytes(of: selected.pcrSelections.0.pcrSelect) { Array($0.prefix(3)) }
            withUnsafeMutableBytes(of: &remaining.pcrSelections.0.pcrSelect) { bytes in
                for index in 0..<3 { bytes[index] &= ~answered[index] }
            }
        }
        var out: [UInt8] = []
        var original = selection
        withUnsafeBytes(of: &original) { out += $0 }
        var count = UInt32(digests.count)
        withUnsafeBytes(of: &count) { out += $0 }
        for var digest in digests { withUnsafeBytes(of: &digest) { out += $0 } }
        return out
    }

    /// An NV index's whole contents, read with its own (empty) auth value; nil if it is not defined.
    func readNV(_ index: TPM2_HANDLE) throws(TPMError) -> [UInt8]? {
        var handle = ESYS_TR(ESYS_TR_NONE)
        guard
            Esys_TR_FromTPMPublic(
                esys,
                index,
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &handle
            ) == 0
        else { return nil }
        defer { Esys_TR_Close(esys, &handle) }
        var nvPublic: UnsafeMutablePointer<TPM2B_NV_PUBLIC>?
        var nvName: UnsafeMutablePointer<TPM2B_NAME>?
        try check(
            Esys_NV_ReadPublic(
                esys,
                handle,
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &nvPublic,
                &nvName
            ),
            "NV_ReadPublic of 0x\(String(index, radix: 16))"
        )
        let size = Int(nvPublic?.pointee.nvPublic.dataSize ?? 0)
        Esys_Free(nvPublic)
        Esys_Free(nvName)
        var out: [UInt8] = []
        while out.count < size {
            let chunk = UInt16(min(512, size - out.count))
            var data: UnsafeMutablePointer<TPM2B_MAX_NV_BUFFER>?
            try check(
                Esys_NV_Read(
                    esys,
                    handle,
                    handle,
                    ESYS_TR(ESYS_TR_PASSWORD),
                    ESYS_TR(ESYS_TR_NONE),
                    ESYS_TR(ESYS_TR_NONE),
                    chunk,
                    UInt16(out.count),
                    &data
                ),
                "NV_Read of 0x\(String(index, radix: 16))"
            )
            defer { Esys_Free(data) }
            guard let data, data.pointee.size > 0 else { break }
            out += withUnsafeBytes(of: data.pointee.buffer) { Array($0.prefix(Int(data.pointee.size))) }
        }
        return out
    }

    static func marshal(_ value: TPM2B_PUBLIC) throws(TPMError) -> [UInt8] {
        var value = value
        var bytes = [UInt8](repeating: 0, count: MemoryLayout<TPM2B_PUBLIC>.size + 8)
        var offset = 0
        try check(Tss2_MU_TPM2B_PUBLIC_Marshal(&value, &bytes, bytes.count, &offset), "marshalling a public area")
        return Array(bytes.prefix(offset))
    }
}

extension TPMContext {
    /// TPM2_PCR_Reset of a resettable PCR (16, the debug PCR, from locality 0).
    func resetPCR(_ pcr: Int) throws(TPMError) {
        try check(
            Esys_PCR_Reset(
                esys,
                ESYS_TR(ESYS_TR_PCR0) + ESYS_TR(pcr),
                ESYS_TR(ESYS_TR_PASSWORD),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE)
            ),
            "PCR_Reset of PCR \(pcr)"
        )
    }
}
