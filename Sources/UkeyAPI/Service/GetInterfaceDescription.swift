extension VarlinkService {
    public enum GetInterfaceDescription: APIMethod {
        public static let name = "org.varlink.service.GetInterfaceDescription"
        public static let role: Role? = nil
        public static let idl = """
            # Get the description of an interface that is implemented by this service.
            method GetInterfaceDescription(interface: string) -> (description: string)
            """

        public struct Request: APIMessage, Equatable {
            public var interface: String

            public init(interface: String) {
                self.interface = interface
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(interface, "interface", max: 256)
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var description: String

            public init(description: String) {
                self.description = description
            }
        }
    }
}
