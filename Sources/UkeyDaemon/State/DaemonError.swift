import UkeyToken
import UkeyVarlink

/// Maps failures below the socket to the stable varlink error names of architecture.md section 4.
/// Anything not named here becomes a generic internal error; its detail goes to the log only.
enum DaemonErrors {
    static func notInitialized() -> VarlinkError { VarlinkError("io.ukey.Admin.NotInitialized") }
    static func invalidArgument(_ reason: String) -> VarlinkError {
        VarlinkError("io.ukey.Admin.InvalidArgument", ["reason": .string(reason)])
    }
    static func noPolicy() -> VarlinkError { VarlinkError("io.ukey.Boot.NoPolicy") }

    static func from(_ error: TokenError) -> VarlinkError {
        switch error.code {
        case .notInitialized: notInitialized()
        case .alreadyInitialized: VarlinkError("io.ukey.Admin.AlreadyInitialized")
        case .tokenLocked: VarlinkError("io.ukey.Admin.TokenLocked")
        case .unknownUser: VarlinkError("io.ukey.Auth.UnknownUser")
        case .unknownCertificate: VarlinkError("io.ukey.Token.UnknownCertificate", ["name": .string(error.reason)])
        case .invalidPIN, .invalidName, .invalidArgument, .invalidCSR, .userExists: invalidArgument(error.reason)
        case .unavailable: VarlinkError("io.ukey.Token.Unavailable", ["reason": .string(error.reason)])
        case .store, .crypto: internalError()
        default: internalError()
        }
    }

    static func internalError() -> VarlinkError { VarlinkError("io.ukey.InternalError") }
}

/// Why ukeyd refuses to start; the message tells the administrator what to do.
struct DaemonStartError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
