// tpm2-tss (Debian's libtss2-dev) for Swift. Macros built from casts or other macros do not
// import into Swift, so the ones ukey needs are re-exported here as constants.
#ifndef UKEY_CTSS2_SHIM_H
#define UKEY_CTSS2_SHIM_H

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_mu.h>

static const TSS2_RC UKEY_TPM2_RC_RETRY = TPM2_RC_RETRY;
static const TSS2_RC UKEY_TPM2_RC_YIELDED = TPM2_RC_YIELDED;
static const TSS2_RC UKEY_TPM2_RC_TESTING = TPM2_RC_TESTING;
static const TSS2_RC UKEY_TPM2_RC_INITIALIZE = TPM2_RC_INITIALIZE;
static const TPM2_ALG_ID UKEY_TPM2_ALG_SHA256 = TPM2_ALG_SHA256;
static const TPM2_ALG_ID UKEY_TPM2_ALG_NULL = TPM2_ALG_NULL;
static const TPM2_ALG_ID UKEY_TPM2_ALG_ECC = TPM2_ALG_ECC;
static const TPM2_ALG_ID UKEY_TPM2_ALG_ECDSA = TPM2_ALG_ECDSA;
static const TPM2_ECC_CURVE UKEY_TPM2_ECC_NIST_P256 = TPM2_ECC_NIST_P256;
// A restricted signing key of the TPM's own (an attestation key): it signs only structures the
// TPM builds itself, such as quotes.
static const TPMA_OBJECT UKEY_ATTESTATION_KEY_ATTRIBUTES = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT
    | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
static const TPM2_ALG_ID UKEY_TPM2_ALG_KEYEDHASH = TPM2_ALG_KEYEDHASH;
static const TPM2_ALG_ID UKEY_TPM2_ALG_AES = TPM2_ALG_AES;
static const TPM2_ALG_ID UKEY_TPM2_ALG_CFB = TPM2_ALG_CFB;
// The storage primary that sealed objects live under (the TPM's own storage root key shape).
static const TPMA_OBJECT UKEY_STORAGE_KEY_ATTRIBUTES = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT
    | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT
    | TPMA_OBJECT_NODA;
// A sealed data object: its data comes from us, it never leaves this TPM in the clear.
static const TPMA_OBJECT UKEY_SEALED_OBJECT_ATTRIBUTES = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT
    | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA;
// An unrestricted signing key (the audit key): it signs digests ukeyd computes, which the
// token's domain tag keeps from passing for anything else.
static const TPMA_OBJECT UKEY_SIGNING_KEY_ATTRIBUTES = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT
    | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT;
static const TPM2_ST UKEY_TPM2_ST_HASHCHECK = TPM2_ST_HASHCHECK;
static const TPM2_HANDLE UKEY_TPM2_RH_NULL = TPM2_RH_NULL;
static const TPM2_CAP UKEY_TPM2_CAP_HANDLES = TPM2_CAP_HANDLES;
static const TPM2_CAP UKEY_TPM2_CAP_PCRS = TPM2_CAP_PCRS;
static const TPM2_HANDLE UKEY_TPM2_TRANSIENT_FIRST = TPM2_TRANSIENT_FIRST;
// Response codes from the transport (the TCTI layer): the TPM itself is unreachable.
static const TSS2_RC UKEY_TSS2_TCTI_RC_LAYER = TSS2_TCTI_RC_LAYER;
static const TSS2_RC UKEY_TSS2_RC_LAYER_MASK = TSS2_RC_LAYER_MASK;

// ukey's monotonic counter: an NV index of type counter, read and incremented with its own
// (empty) auth value, defined under the owner hierarchy.
static const TPMA_NV UKEY_NV_COUNTER_ATTRIBUTES = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT)
    | TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA;
static const TPM2_HANDLE UKEY_TPM2_HR_NV_INDEX = TPM2_HR_NV_INDEX;
static const TSS2_RC UKEY_TPM2_RC_NV_DEFINED = TPM2_RC_NV_DEFINED;
static const TSS2_RC UKEY_TPM2_RC_NV_UNINITIALIZED = TPM2_RC_NV_UNINITIALIZED;
static const TSS2_RC UKEY_TPM2_RC_HANDLE = TPM2_RC_HANDLE;

// Keylime's identity: the endorsement key (TCG EK Credential Profile templates L-1 and L-2), the
// attestation key made under it, and the sessions the EK's policy asks for.
static const TPM2_ALG_ID UKEY_TPM2_ALG_RSA = TPM2_ALG_RSA;
static const TPM2_ALG_ID UKEY_TPM2_ALG_RSASSA = TPM2_ALG_RSASSA;
static const TPM2_ALG_ID UKEY_TPM2_ALG_SHA1 = TPM2_ALG_SHA1;
static const TPM2_ALG_ID UKEY_TPM2_ALG_SHA384 = TPM2_ALG_SHA384;
static const TPM2_ALG_ID UKEY_TPM2_ALG_SHA512 = TPM2_ALG_SHA512;
static const TPM2_SE UKEY_TPM2_SE_POLICY = TPM2_SE_POLICY;
static const TPMA_OBJECT UKEY_ENDORSEMENT_KEY_ATTRIBUTES = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT
    | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
static const TPM2_HANDLE UKEY_EK_CERT_NV_RSA = 0x01c00002;
static const TPM2_HANDLE UKEY_EK_CERT_NV_ECC = 0x01c0000a;

#endif
