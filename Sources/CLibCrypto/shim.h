// The system's OpenSSL libcrypto, for what swift-crypto lacks: the block ciphers of PIV's
// management key (3DES, AES-ECB on one block).
#include <openssl/evp.h>
#include <openssl/err.h>
