import UkeyVarlink

/// `org.varlink.service`: introspection, for generic varlink clients.
enum VarlinkService {
    enum GetInfo: ServiceMethod {
        static let name = "org.varlink.service.GetInfo"
        static let role: Role? = nil

        struct Reply: Sendable {
            let vendor = DaemonVersion.vendor
            let product = DaemonVersion.product
            let version = DaemonVersion.version
            let url = DaemonVersion.url
            let interfaces = VarlinkInterface.all.map(\.name)
        }

        static func answer(_ request: NoParameters, in call: CallContext) async throws(ServiceError) -> Reply {
            Reply()
        }
    }

    enum GetInterfaceDescription: ServiceMethod {
        static let name = "org.varlink.service.GetInterfaceDescription"
        static let role: Role? = nil

        struct Request: Sendable {
            let interface: String
        }

        struct Reply: Sendable {
            let description: String
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            guard let interface = VarlinkInterface.all.first(where: { $0.name == request.interface }) else {
                throw .interfaceNotFound(request.interface)
            }
            return Reply(description: interface.description)
        }
    }
}
