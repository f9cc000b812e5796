extension VarlinkInterface {
    public static let auth = VarlinkInterface(
        name: "io.ukey.Auth",
        description: """
            # Identity authentication: a user proves a PIN to the token and gets a session,
            # which signing with the user's key requires, or a ticket to start one user VM.
            interface io.ukey.Auth

            # Checks the PIN (hypervisor role). expires is RFC 3339 UTC; certificate is PEM.
            # Without forVm: a session, valid only on connections of the uid that logged in
            # (another uid presenting it gets io.ukey.Token.SessionRequired, or reason session-of-another-uid
            # from Boot.Measure). With forVm: no session, but a one-time ticket to start that VM,
            # for the hypervisor to pass as Boot.Measure's session (a domain's XML may carry it:
            # its first Measure takes it for the calling process, and Boot.Started or
            # Boot.Release of the VM spends it; unused, it expires after 10 minutes).
            method Login(user: string, pin: string, forVm: ?string) -> (
              session: ?string,
              ticket: ?string,
              expires: string,
              roles: []string,
              certificate: string
            )

            # Ends the caller's uid's session (another uid's, or none: io.ukey.Token.SessionRequired).
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
