extension Boot {
    /// One entity of the chain and where it stands: what a hypervisor asks about one VM without
    /// reading the whole chain.
    public enum EntityState: APIMethod {
        public static let name = "io.ukey.Boot.EntityState"
        public static let role: Role? = nil
        public static let idl = """
            # One entity of the chain of the current boot (an unknown one: UnknownEntity).
            method EntityState(name: string) -> (entity: Entity)
            """

        public struct Request: APIMessage {
            public var name: String

            public init(name: String) {
                self.name = name
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(name, "name", max: FieldLimits.name)
            }
        }

        public struct Reply: APIMessage {
            public var entity: Chain.Entity

            public init(entity: Chain.Entity) {
                self.entity = entity
            }
        }
    }
}
