/// `io.ukey.Admin.Version`: which ukeyd answers, and the backend that keeps its token: what an
/// administrator checks after an upgrade.
extension Admin.Version: ServedMethod {

    static func answer(_ request: Empty, in call: CallContext) async throws(APIError) -> Reply {
        Reply(
            product: DaemonVersion.product,
            version: DaemonVersion.version,
            backend: call.services.tokens.provider.backendName
        )
    }
}
