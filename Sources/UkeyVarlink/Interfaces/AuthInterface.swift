extension VarlinkInterface {
    public static let auth = VarlinkInterface(
        name: "io.ukey.Auth",
        description: """
            # Identity authentication: a user proves a PIN to the token and gets a session,
            # which starting a user VM or signing with the user's key requires.
            interface io.ukey.Auth

            # Checks the PIN (hypervisor role). expires is RFC 3339 UTC; certificate is PEM.
            method Login(user: string, pin: string) -> (
              session: string,
              expires: string,
              roles: []string,
              certificate: string
            )

            method Logout(session: string) -> ()

            # Wrong PIN; this many tries remain before it locks.
            error BadPin (retriesLeft: int)
            # No tries remain; an administrator unblocks it with the SO PIN.
            error PinLocked ()
            error UnknownUser ()
            # The calling process already has as many logins waiting as it may (PIN checks run one
            # at a time, so one peer must not make every other user wait).
            error Busy (reason: string)

            """
    )
}
