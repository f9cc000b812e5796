extension VarlinkInterface {
    public static let token = VarlinkInterface(
        name: "io.ukey.Token",
        description: """
            # The trusted root's cryptographic services.
            interface io.ukey.Token

            # Which backend serves each role (soft, tpm, pcsc).
            type Roles (registers: string, keys: string, users: string)

            # algorithms: the register banks (sha256, sm3, ...) and what the token's keys sign
            # with (ecdsa-p256-sha256, or sm2-sm3 for a token initialised with SM2 keys).
            method Info() -> (backend: string, serial: string, algorithms: []string, roles: Roles)

            # The hardware behind a role (a TPM) cannot be reached or failed. Nothing changed;
            # a measurement that failed so was not taken, and may be sent again. Any method that
            # uses the role may return it.
            error Unavailable (reason: string)

            # Signs a 32-byte digest (base64; SHA-256 or SM3) with a user's own key; needs that
            # user's session. The key signs context + digest, never the digest alone: ECDSA P-256
            # over SHA-256 of those bytes (algorithm ecdsa-p256-sha256), or on an SM2 token SM2 with
            # SM3 and the token's SM2 ID (algorithm sm2-sm3); context (base64) is "ukey-token-sign-v1" and a NUL byte, so that no
            # signature made here is ever one over a quote or an audit checkpoint.
            # The root CA, sub-CA, attestation and audit keys are restricted and never sign caller data.
            method Sign(key: string, digest: string, session: ?string) -> (signature: string, algorithm: string, context: string)

            # A PEM certificate: root-ca, token-keys-ca, user-ca, attestation, audit, policy-signer,
            # or a user's.
            method Certificate(name: string) -> (pem: string)

            # 1-1024 random bytes, base64.
            method Random(bytes: int) -> (data: string)

            error SessionRequired ()
            error RestrictedKey (key: string)
            error UnknownCertificate (name: string)

            """
    )
}
