extension VarlinkInterface {
    public static let token = VarlinkInterface(
        name: "io.ukey.Token",
        description: """
            # The trusted root's cryptographic services.
            interface io.ukey.Token

            # Which backend serves each role (soft, tpm, pcsc).
            type Roles (registers: string, keys: string, users: string)

            method Info() -> (backend: string, serial: string, algorithms: []string, roles: Roles)

            # The hardware behind a role (a TPM) cannot be reached or failed. Nothing changed;
            # a measurement that failed so was not taken, and may be sent again. Any method that
            # uses the role may return it.
            error Unavailable (reason: string)

            # Signs a SHA-256 digest (base64) with a user's own key; needs that user's session.
            # The key signs context + digest (ECDSA P-256 over SHA-256 of those bytes), never the
            # digest alone; context (base64) is "ukey-token-sign-v1" and a NUL byte, so that no
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
