import CTSS2

/// The TPM's keys that ukey uses are primaries made from templates under the owner hierarchy:
/// the same TPM always derives the same key from the same template, so there is nothing to store
/// and nothing to lose; another TPM derives another key. Each template's `unique` is derived from
/// the token's `TPMObjectSecret`, so someone else's template (the same, without the secret)
/// derives another key: a key that is not ukey's, whose signature no ukey certificate vouches
/// for. Each key's auth value is derived from it too.
/// The certificate authorities whose keys the TPM holds with keys = tpm: the root and its two
/// sub-CAs (see `IdentityCA`). Each label is its template's `unique`, so each is its own key.
public enum CertificateAuthorityKey: String, Sendable, CaseIterable {
    case root = "ukey root CA"
    case tokenKeys = "ukey token-keys CA"
    case users = "ukey user CA"
    case vtpm = "ukey vtpm CA"
}

extension TPMContext {
    enum Template: Equatable {
        /// ECDSA P-256, restricted: signs only what the TPM builds (quotes).
        case attestation
        /// ECDSA P-256, unrestricted: signs audit checkpoint digests.
        case audit
        /// ECDSA P-256, unrestricted: a CA's key, which signs certificates (keys = tpm). Its
        /// template differs from the audit key's only in `unique` (the CA's label), which is
        /// enough for the TPM to derive another key.
        case certificateAuthority(CertificateAuthorityKey)
        /// ECC P-256 storage key (restricted decrypt, AES-128-CFB): the parent of sealed objects.
        case storage

        /// The template, `unique` its secret-derived value (32 bytes, as the ECC x coordinate:
        /// TPM2 Part 1, 27.2, the template's unique field is what makes two primaries differ).
        func publicArea(unique: [UInt8]) -> TPM2B_PUBLIC {
            var template = TPM2B_PUBLIC()
            template.publicArea.type = UKEY_TPM2_ALG_ECC
            template.publicArea.nameAlg = UKEY_TPM2_ALG_SHA256
            template.publicArea.parameters.eccDetail.curveID = UKEY_TPM2_ECC_NIST_P256
            template.publicArea.parameters.eccDetail.kdf.scheme = UKEY_TPM2_ALG_NULL
            switch self {
            case .attestation, .audit, .certificateAuthority:
                template.publicArea.objectAttributes =
                    self == .attestation ? UKEY_ATTESTATION_KEY_ATTRIBUTES : UKEY_SIGNING_KEY_ATTRIBUTES
                template.publicArea.parameters.eccDetail.symmetric.algorithm = UKEY_TPM2_ALG_NULL
                template.publicArea.parameters.eccDetail.scheme.scheme = UKEY_TPM2_ALG_ECDSA
                template.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = UKEY_TPM2_ALG_SHA256
            case .storage:
                template.publicArea.objectAttributes = UKEY_STORAGE_KEY_ATTRIBUTES
                template.publicArea.parameters.eccDetail.symmetric.algorithm = UKEY_TPM2_ALG_AES
                template.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128
                template.publicArea.parameters.eccDetail.symmetric.mode.aes = UKEY_TPM2_ALG_CFB
                template.publicArea.parameters.eccDetail.scheme.scheme = UKEY_TPM2_ALG_NULL
            }
            template.publicArea.unique.ecc.x.size = UInt16(unique.count)
            withUnsafeMutableBytes(of: &template.publicArea.unique.ecc.x.buffer) { $0.copyBytes(from: unique) }
            return template
        }

        var operation: String { "creating the \(keyName)" }

        var keyName: String {
            switch self {
            case .attestation: "attestation key"
            case .audit: "audit key"
            case .certificateAuthority(let authority): "\(authority.rawValue) key"
            case .storage: "storage primary"
            }
        }

        var isUnrestrictedSigningKey: Bool {
            switch self {
            case .audit, .certificateAuthority: true
            case .attestation, .storage: false
            }
        }
    }

    /// Creates (loads) a primary from `template`, its unique and its auth value derived from the
    /// token's secret; the caller flushes the handle. (ESYS keeps the auth value with the handle,
    /// so the key's later commands authorise with it.)
    func createPrimary(_ template: Template) throws(TPMError) -> (handle: ESYS_TR, point: [UInt8]) {
        var sensitive = TPM2B_SENSITIVE_CREATE()
        let auth = secret.derive("auth \(template.keyName)")
        sensitive.sensitive.userAuth.size = UInt16(auth.count)
        withUnsafeMutableBytes(of: &sensitive.sensitive.userAuth.buffer) { $0.copyBytes(from: auth) }
        defer { withUnsafeMutableBytes(of: &sensitive) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        var publicArea = template.publicArea(unique: secret.derive("unique \(template.keyName)"))
        var outside = TPM2B_DATA()
        var creationPCRs = TPML_PCR_SELECTION()
        var handle: ESYS_TR = ESYS_TR(ESYS_TR_NONE)
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        var creationData: UnsafeMutablePointer<TPM2B_CREATION_DATA>?
        var creationHash: UnsafeMutablePointer<TPM2B_DIGEST>?
        var ticket: UnsafeMutablePointer<TPMT_TK_CREATION>?
        try check(
            Esys_CreatePrimary(
                esys,
                ESYS_TR(ESYS_TR_RH_OWNER),
                ESYS_TR(ESYS_TR_PASSWORD),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &sensitive,
                &publicArea,
                &outside,
                &creationPCRs,
                &handle,
                &outPublic,
                &creationData,
                &creationHash,
                &ticket
            ),
            template.operation
        )
        defer {
            Esys_Free(outPublic)
            Esys_Free(creationData)
            Esys_Free(creationHash)
            Esys_Free(ticket)
        }
        guard let outPublic else {
            Esys_FlushContext(esys, handle)
            throw TPMError(local: "the TPM returned no public key", template.operation)
        }
        let ecc = outPublic.pointee.publicArea.unique.ecc
        let x = withUnsafeBytes(of: ecc.x.buffer) { Array($0.prefix(Int(ecc.x.size))) }
        let y = withUnsafeBytes(of: ecc.y.buffer) { Array($0.prefix(Int(ecc.y.size))) }
        func padded(_ v: [UInt8]) -> [UInt8] { [UInt8](repeating: 0, count: max(0, 32 - v.count)) + v }
        return (handle, [0x04] + padded(x) + padded(y))
    }

    /// The allocated PCR banks, as TPM_ALG_IDs.
    func allocatedBanks() throws(TPMError) -> [UInt16] {
        var more: TPMI_YES_NO = 0
        var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>?
        let rc = Esys_GetCapability(
            esys,
            ESYS_TR(ESYS_TR_NONE),
            ESYS_TR(ESYS_TR_NONE),
            ESYS_TR(ESYS_TR_NONE),
            UKEY_TPM2_CAP_PCRS,
            0,
            16,
            &more,
            &data
        )
        guard rc == 0, let data else { throw TPMError(rc, "GetCapability(PCRS)") }
        defer { Esys_Free(data) }
        let list = data.pointee.data.assignedPCR
        let selections = withUnsafeBytes(of: list.pcrSelections) {
            Array($0.bindMemory(to: TPMS_PCR_SELECTION.self).prefix(Int(min(list.count, 16))))
        }
        return selections.compactMap { selection in
            let bits = withUnsafeBytes(of: selection.pcrSelect) {
                Array($0.prefix(Int(min(selection.sizeofSelect, 4))))
            }
            return bits.contains { $0 != 0 } ? selection.hash : nil
        }
    }

    /// Flushes transient objects left loaded by an earlier ukeyd that died without flushing them:
    /// a TPM without a resource manager (swtpm, /dev/tpm0) has only three slots. Behind the
    /// kernel's resource manager (/dev/tpmrm0) a connection sees only its own objects, so this
    /// touches nobody else's.
    func flushLeftoverTransients() {
        var more: TPMI_YES_NO = 0
        var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>?
        guard
            Esys_GetCapability(
                esys,
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                UKEY_TPM2_CAP_HANDLES,
                UKEY_TPM2_TRANSIENT_FIRST,
                16,
                &more,
                &data
            ) == 0, let data
        else { return }
        defer { Esys_Free(data) }
        let list = data.pointee.data.handles
        let handles = withUnsafeBytes(of: list.handle) {
            Array($0.bindMemory(to: TPM2_HANDLE.self).prefix(Int(list.count)))
        }
        for tpmHandle in handles {
            var object: ESYS_TR = ESYS_TR(ESYS_TR_NONE)
            if Esys_TR_FromTPMPublic(
                esys,
                tpmHandle,
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                ESYS_TR(ESYS_TR_NONE),
                &object
            ) == 0 {
                Esys_FlushContext(esys, object)
            }
        }
    }
}
