import UkeyAPI

/// `org.varlink.service`: introspection, for generic varlink clients.
extension VarlinkService.GetInfo: ConstantMethod {

    /// Never changes.
    static let reply = Reply(
        vendor: DaemonVersion.vendor,
        product: DaemonVersion.product,
        version: DaemonVersion.version,
        url: DaemonVersion.url,
        interfaces: APIInterface.all.map(\.name)
    )

}

extension VarlinkService.GetInterfaceDescription: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        guard let interface = APIInterface.all.first(where: { $0.name == request.interface }) else {
            throw .interfaceNotFound(request.interface)
        }
        return Reply(description: interface.description)
    }
}
