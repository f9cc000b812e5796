/// `io.ukey.Token`: the trusted root's cryptographic services.
public enum Token {
    public static let interface = APIInterface(
        name: "io.ukey.Token",
        header: """
            # The trusted root's cryptographic services.
            interface io.ukey.Token
            """,
        types: """
            # Which backend serves each role (soft, tpm, pcsc), and where the sealed state is
            # kept (store).
            type Roles (registers: string, keys: string, users: string, store: string)
            """,
        methods: [Info.self, Sign.self, Certificate.self, Random.self],
        errors: """
            # The hardware behind a role (a TPM) cannot be reached or failed. Nothing changed;
            # a measurement that failed so was not taken, and may be sent again. Any method that
            # uses the role may return it.
            error Unavailable (reason: string)

            error SessionRequired ()
            error RestrictedKey (key: string)
            error UnknownCertificate (name: string)
            """
    )

    /// Which backend serves each role.
    public struct Roles: APIMessage, Equatable {
        public var registers: String
        public var keys: String
        public var users: String
        /// What protects the sealed state.
        public var store: String

        public init(registers: String, keys: String, users: String, store: String) {
            self.registers = registers
            self.keys = keys
            self.users = users
            self.store = store
        }
    }
}
