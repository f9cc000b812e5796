extension VarlinkInterface {
    public static let admin = VarlinkInterface(
        name: "io.ukey.Admin",
        description: """
            # Provisioning (admin role).
            interface io.ukey.Admin

            # Creates the token once: root CA, attestation and audit keys, SO PIN, and the
            # policy signer's certificate (PEM). Returns the root CA certificate (PEM).
            method Initialize(soPin: string, policySigner: string) -> (rootCertificate: string)

            method Status() -> (
              initialized: bool,
              backend: string,
              # The backend serving each role, once initialised.
              roles: ?(registers: string, keys: string, users: string),
              policyVersion: ?int,
              mode: string,
              bootId: string,
              users: int,
              entities: int,
              measurements: int,
              # How many group commits (one journal write and fsync each) the measurements
              # since ukeyd started took: fewer than the measurements when calls come together.
              measurementBatches: int,
              # The exec guards heard from since ukeyd started: via "socket" (the host's, with
              # its pid) or "channel" (a guest's); state "running", "stopped", or "lost" (gone
              # without a stop: its connection closed, or its channel fell silent), since when,
              # and why it was lost.
              guards: [](vm: string, via: string, pid: ?int, state: string, since: string, reason: ?string)
            )

            # Loads a policy: signature is base64 DER ECDSA over the exact policy bytes, as
            # openssl dgst -sha256 -sign writes it. Refused for a bad signature, a version
            # not above the loaded one, or lint problems; the old policy stays in force.
            # Loads a signed policy given in the call, or, without parameters, the
            # highest-version signed policy of the policy directory (as SIGHUP does).
            # Refused (PolicyRejected, with the reason) unless signed, lint-clean and newer.
            method LoadPolicy(policy: ?string, signature: ?string) -> (version: int)

            method AddUser(user: string, pin: string, roles: ?[]string) -> (certificate: string)

            # A new identity certificate for a user: for a CSR (PEM) when the key lives on a
            # smart card, else for the user's key in the token.
            method IssueCertificate(user: string, csr: ?string) -> (certificate: string)

            method UnblockPin(user: string, soPin: string, newPin: string) -> ()

            method SetMode(mode: string) -> (mode: string)

            # Which ukeyd answers, and the backend that keeps the token's state.
            method Version() -> (product: string, version: string, backend: string)

            error NotInitialized ()
            error AlreadyInitialized ()
            error PolicyRejected (reason: string)
            error BadSoPin (retriesLeft: int)
            error TokenLocked ()
            error InvalidArgument (reason: string)

            """
    )
}
