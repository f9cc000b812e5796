/// `io.ukey.Admin.Version`: which ukeyd answers, and the backend that keeps its token: what an
/// administrator checks after an upgrade.
extension Admin {
    enum Version: ServiceMethod {
        static let name = "io.ukey.Admin.Version"
        static let role: Role? = .admin

        struct Reply: Sendable {
            let product = DaemonVersion.product
            let version = DaemonVersion.version
            let backend: String
        }

        static func answer(_ request: NoParameters, in call: CallContext) async throws(ServiceError) -> Reply {
            Reply(backend: call.services.tokens.provider.backendName)
        }
    }
}
