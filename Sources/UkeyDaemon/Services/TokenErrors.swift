import UkeyAPI
import UkeyToken
import UkeyVarlink

extension APIError {
    /// The error as a varlink error reply.
    var varlink: VarlinkError { VarlinkError(name, parameters) }

    /// A token's failure in the API's terms. Anything not named here is an internal error.
    init(_ error: TokenError) {
        self =
            switch error.code {
            case .notInitialized: .notInitialized
            case .alreadyInitialized: .alreadyInitialized
            case .tokenLocked: .tokenLocked
            case .unknownUser: .unknownUser
            case .unknownCertificate: .unknownCertificate(error.reason)
            case .invalidPIN, .invalidName, .invalidArgument, .invalidCSR, .userExists:
                .invalidArgument(reason: error.reason)
            case .unavailable: .tokenUnavailable(reason: error.reason)
            default: .internalError
            }
    }
}
