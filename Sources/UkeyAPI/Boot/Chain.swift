extension Boot {
    /// The chain of the current boot.
    public enum Chain: APIMethod {
        public static let name = "io.ukey.Boot.Chain"
        public static let role: Role? = nil
        public static let idl = """
            # The chain of the current boot.
            method Chain() -> (bootId: string, mode: string, entities: []Entity)
            """

        public typealias Request = Empty

        /// An entity of the boot chain and where it stands in this boot.
        public struct Entity: APIMessage, Equatable {
            public var name: String
            public var parent: String
            public var kind: String
            public var state: String
            public var reason: String?
            public var register: Int
            /// Digest by component, "<alg>:<hex>".
            public var measured: [String: String]
            /// The components the policy expects, in its order.
            public var components: [String]

            public init(
                name: String,
                parent: String,
                kind: String,
                state: String,
                reason: String?,
                register: Int,
                measured: [String: String],
                components: [String]
            ) {
                self.name = name
                self.parent = parent
                self.kind = kind
                self.state = state
                self.reason = reason
                self.register = register
                self.measured = measured
                self.components = components
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var bootID: String
            public var mode: String
            public var entities: [Entity]

            enum CodingKeys: String, CodingKey {
                case bootID = "bootId"
                case mode, entities
            }

            public init(bootID: String, mode: String, entities: [Entity]) {
                self.bootID = bootID
                self.mode = mode
                self.entities = entities
            }
        }
    }
}
