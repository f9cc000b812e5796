// The system's OpenSSL libcrypto, for what swift-crypto lacks: the block ciphers of PIV's
// management key (3DES, AES-ECB on one block), and the GM/T algorithms SM3 and SM2.
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
