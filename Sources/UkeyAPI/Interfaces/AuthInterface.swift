/// `io.ukey.Auth`: a PIN for a session (bound to the uid that logged in), or for a one-time
/// ticket to start one VM.
public enum Auth {
    public static let interface = APIInterface(
        name: "io.ukey.Auth",
        header: """
            # Identity authentication: a user proves a PIN to the token and gets a session,
            # which signing with the user's key requires, or a ticket to start one user VM.
            interface io.ukey.Auth
            """,
        methods: [Login.self, Logout.self],
        errors: """
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
