import UkeyToken
import UkeyVarlink

/// The one table from the services' errors to the stable varlink error names of
/// architecture.md section 4 (and the IDL's `error` lines).
extension ServiceError {
    var varlink: VarlinkError {
        switch self {
        case .invalidParameter(let name): .invalidParameter(name)
        case .permissionDenied: .permissionDenied()
        case .interfaceNotFound(let name): .interfaceNotFound(name)
        case .methodNotFound(let name): .methodNotFound(name)
        case .auditUnavailable(let reason): VarlinkError("io.ukey.AuditUnavailable", ["reason": .string(reason)])
        case .internalError: VarlinkError("io.ukey.InternalError")

        case .notInitialized: VarlinkError("io.ukey.Admin.NotInitialized")
        case .alreadyInitialized: VarlinkError("io.ukey.Admin.AlreadyInitialized")
        case .invalidArgument(let reason): VarlinkError("io.ukey.Admin.InvalidArgument", ["reason": .string(reason)])
        case .policyRejected(let reason): VarlinkError("io.ukey.Admin.PolicyRejected", ["reason": .string(reason)])
        case .badSOPIN(let left): VarlinkError("io.ukey.Admin.BadSoPin", ["retriesLeft": .int(left)])
        case .tokenLocked: VarlinkError("io.ukey.Admin.TokenLocked")

        case .noPolicy: VarlinkError("io.ukey.Boot.NoPolicy")
        case .unknownEntity(let entity): VarlinkError("io.ukey.Boot.UnknownEntity", ["entity": .string(entity)])
        case .unknownComponent(let entity, let component):
            VarlinkError("io.ukey.Boot.UnknownComponent", ["entity": .string(entity), "component": .string(component)])
        case .cannotHash(let path, let reason):
            VarlinkError("io.ukey.Boot.CannotHash", ["path": .string(path), "reason": .string(reason)])
        case .journalFull(let limit, let reason):
            VarlinkError("io.ukey.Boot.JournalFull", ["limit": .int(limit), "reason": .string(reason)])
        case .stateNotAccepted(let entity, let reason):
            VarlinkError("io.ukey.Boot.StateNotAccepted", ["entity": .string(entity), "reason": .string(reason)])

        case .badPIN(let left): VarlinkError("io.ukey.Auth.BadPin", ["retriesLeft": .int(left)])
        case .pinLocked: VarlinkError("io.ukey.Auth.PinLocked")
        case .unknownUser: VarlinkError("io.ukey.Auth.UnknownUser")
        case .loginBusy(let reason): VarlinkError("io.ukey.Auth.Busy", ["reason": .string(reason)])

        case .unknownCertificate(let name): VarlinkError("io.ukey.Token.UnknownCertificate", ["name": .string(name)])
        case .restrictedKey(let key): VarlinkError("io.ukey.Token.RestrictedKey", ["key": .string(key)])
        case .sessionRequired: VarlinkError("io.ukey.Token.SessionRequired")
        case .tokenUnavailable(let reason): VarlinkError("io.ukey.Token.Unavailable", ["reason": .string(reason)])
        }
    }

    /// The reason a client reads, or else the error's name: for the daemon's own audit records.
    var summary: String { varlink.parameters["reason"]?.stringValue ?? varlink.name }

    /// A token's failure in the services' terms. Anything not named here is an internal error.
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
