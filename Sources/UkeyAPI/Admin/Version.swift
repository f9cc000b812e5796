extension Admin {
    /// Which ukeyd answers, and the backend that keeps its token: what an administrator checks
    /// after an upgrade.
    public enum Version: APIMethod {
        public static let name = "io.ukey.Admin.Version"
        public static let role: Role? = .admin
        public static let idl = """
            # Which ukeyd answers, and the backend that keeps the token's state.
            method Version() -> (product: string, version: string, backend: string)
            """

        public typealias Request = Empty

        public struct Reply: APIMessage, Equatable {
            public var product: String
            public var version: String
            public var backend: String

            public init(product: String, version: String, backend: String) {
                self.product = product
                self.version = version
                self.backend = backend
            }
        }
    }
}
