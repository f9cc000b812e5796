/// `io.ukey.Admin`: provisioning (admin role).
public enum Admin {
    public static let interface = APIInterface(
        name: "io.ukey.Admin",
        header: """
            # Provisioning (admin role).
            interface io.ukey.Admin
            """,
        methods: [
            Initialize.self, Status.self, LoadPolicy.self, AddUser.self, IssueCertificate.self, UnblockPin.self,
            SetMode.self, Version.self,
        ],
        errors: """
            error NotInitialized ()
            error AlreadyInitialized ()
            error PolicyRejected (reason: string)
            error BadSoPin (retriesLeft: int)
            error TokenLocked ()
            error InvalidArgument (reason: string)
            """
    )
}
