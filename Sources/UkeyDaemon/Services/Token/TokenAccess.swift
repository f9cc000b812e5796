import Synchronization
import UkeyToken

/// The token, once it is open or initialised, and its backend: what every service asks for
/// before it touches a key, a register or a user. Set once (at start, or by Initialize).
final class TokenAccess: Sendable {
    let provider: any TrustedRootProvider
    /// Whether the demo policy signer may be trusted (`--allow-demo-keys`; see `DemoKeys`).
    let allowDemoKeys: Bool
    private let slot = Mutex<(any TrustedRoot)?>(nil)
    /// The token-keys sub-CA's certificate (PEM), sent with every quote: it never changes.
    private let keysCA = Mutex<String?>(nil)

    init(provider: any TrustedRootProvider, allowDemoKeys: Bool) {
        self.provider = provider
        self.allowDemoKeys = allowDemoKeys
    }

    var current: (any TrustedRoot)? {
        get { slot.withLock { $0 } }
        set { slot.withLock { $0 = newValue } }
    }

    /// The token, or `notInitialized`.
    func require() throws(APIError) -> any TrustedRoot {
        guard let token = current else { throw .notInitialized }
        return token
    }

    /// The token-keys sub-CA's certificate, read from the token once.
    func tokenKeysCAPEM(of token: any TrustedRoot) async throws -> String {
        if let pem = keysCA.withLock({ $0 }) { return pem }
        let pem = try IdentityCA.pem(await token.certificate(named: TokenKey.tokenKeysCA.rawValue))
        keysCA.withLock { $0 = pem }
        return pem
    }
}
