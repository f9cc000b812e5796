extension VarlinkService {
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
}
