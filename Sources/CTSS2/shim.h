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

#endif
