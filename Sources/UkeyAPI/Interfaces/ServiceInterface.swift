/// `org.varlink.service`: introspection, for generic varlink clients.
public enum VarlinkService {
    /// The standard introspection interface every varlink service implements.
    public static let interface = APIInterface(
        name: "org.varlink.service",
        header: """
            # The Varlink Service Interface is provided by every varlink service. It
            # describes the service and the interfaces it implements.
            interface org.varlink.service
            """,
        methods: [GetInfo.self, GetInterfaceDescription.self],
        errors: """
            # The requested interface was not found.
            error InterfaceNotFound (interface: string)

            # The requested method was not found
            error MethodNotFound (method: string)

            # The interface defines the requested method, but the service does not
            # implement it.
            error MethodNotImplemented (method: string)

            # One of the passed parameters is invalid.
            error InvalidParameter (parameter: string)

            # Client is denied access
            error PermissionDenied ()

            # Method is expected to be called with 'more' set to true, but wasn't
            error ExpectedMore ()
            """
    )

    public enum GetInfo: APIMethod {
        public static let name = "org.varlink.service.GetInfo"
        public static let role: Role? = nil
        public static let idl = """
            # Get a list of all the interfaces a service provides and information
            # about the implementation.
            method GetInfo() -> (
              vendor: string,
              product: string,
              version: string,
              url: string,
              interfaces: []string
            )
            """

        public typealias Request = Empty

        public struct Reply: APIMessage, Equatable {
            public var vendor: String
            public var product: String
            public var version: String
            public var url: String
            public var interfaces: [String]

            public init(vendor: String, product: String, version: String, url: String, interfaces: [String]) {
                self.vendor = vendor
                self.product = product
                self.version = version
                self.url = url
                self.interfaces = interfaces
            }
        }
    }

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
