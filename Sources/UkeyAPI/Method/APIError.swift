import UkeyCodec

/// Every error a ukey method answers with, in the API's terms, and the one table from each to
/// its stable varlink name and parameters (the IDL's `error` lines). ukeyd's services throw
/// these; a client catches them typed: an error reply is read back into the same case.
public enum APIError: Error, Sendable, Equatable, CustomStringConvertible {
    // Any interface.
    case invalidParameter(String)
    case permissionDenied
    case interfaceNotFound(String)
    case methodNotFound(String)
    case auditUnavailable(reason: String)
    /// The detail goes to the daemon's log only; the client learns nothing of its insides.
    case internalError

    // io.ukey.Admin
    case notInitialized
    case alreadyInitialized
    case invalidArgument(reason: String)
    case policyRejected(reason: String)
    case badSOPIN(retriesLeft: Int)
    case tokenLocked

    // io.ukey.Boot
    case noPolicy
    case unknownEntity(String)
    case unknownComponent(entity: String, component: String)
    case cannotHash(path: String, reason: String)
    case journalFull(limit: Int, reason: String)
    case stateNotAccepted(entity: String, reason: String)

    // io.ukey.Auth
    case badPIN(retriesLeft: Int)
    case pinLocked
    case unknownUser
    case loginBusy(reason: String)

    // io.ukey.Token
    case unknownCertificate(String)
    case restrictedKey(String)
    case sessionRequired
    case tokenUnavailable(reason: String)

    /// An error this table does not know (a protocol error, a refused connection, a newer
    /// daemon's), as it was sent.
    case other(name: String, parameters: [String: JSONValue])

    public var name: String { wire.name }
    public var parameters: [String: JSONValue] { wire.parameters }

    public var description: String {
        let parameters = self.parameters
        guard !parameters.isEmpty else { return name }
        let fields = parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return "\(name) \(fields.joined(separator: " "))"
    }

    /// The reason a client reads, or else the error's name.
    public var summary: String { parameters["reason"]?.stringValue ?? name }

    private var wire: (name: String, parameters: [String: JSONValue]) {
        switch self {
        case .invalidParameter(let name): ("org.varlink.service.InvalidParameter", ["parameter": .string(name)])
        case .permissionDenied: ("org.varlink.service.PermissionDenied", [:])
        case .interfaceNotFound(let name): ("org.varlink.service.InterfaceNotFound", ["interface": .string(name)])
        case .methodNotFound(let name): ("org.varlink.service.MethodNotFound", ["method": .string(name)])
        case .auditUnavailable(let reason): ("io.ukey.AuditUnavailable", ["reason": .string(reason)])
        case .internalError: ("io.ukey.InternalError", [:])

        case .notInitialized: ("io.ukey.Admin.NotInitialized", [:])
        case .alreadyInitialized: ("io.ukey.Admin.AlreadyInitialized", [:])
        case .invalidArgument(let reason): ("io.ukey.Admin.InvalidArgument", ["reason": .string(reason)])
        case .policyRejected(let reason): ("io.ukey.Admin.PolicyRejected", ["reason": .string(reason)])
        case .badSOPIN(let left): ("io.ukey.Admin.BadSoPin", ["retriesLeft": .int(left)])
        case .tokenLocked: ("io.ukey.Admin.TokenLocked", [:])

        case .noPolicy: ("io.ukey.Boot.NoPolicy", [:])
        case .unknownEntity(let entity): ("io.ukey.Boot.UnknownEntity", ["entity": .string(entity)])
        case .unknownComponent(let entity, let component):
            ("io.ukey.Boot.UnknownComponent", ["entity": .string(entity), "component": .string(component)])
        case .cannotHash(let path, let reason):
            ("io.ukey.Boot.CannotHash", ["path": .string(path), "reason": .string(reason)])
        case .journalFull(let limit, let reason):
            ("io.ukey.Boot.JournalFull", ["limit": .int(limit), "reason": .string(reason)])
        case .stateNotAccepted(let entity, let reason):
            ("io.ukey.Boot.StateNotAccepted", ["entity": .string(entity), "reason": .string(reason)])

        case .badPIN(let left): ("io.ukey.Auth.BadPin", ["retriesLeft": .int(left)])
        case .pinLocked: ("io.ukey.Auth.PinLocked", [:])
        case .unknownUser: ("io.ukey.Auth.UnknownUser", [:])
        case .loginBusy(let reason): ("io.ukey.Auth.Busy", ["reason": .string(reason)])

        case .unknownCertificate(let name): ("io.ukey.Token.UnknownCertificate", ["name": .string(name)])
        case .restrictedKey(let key): ("io.ukey.Token.RestrictedKey", ["key": .string(key)])
        case .sessionRequired: ("io.ukey.Token.SessionRequired", [:])
        case .tokenUnavailable(let reason): ("io.ukey.Token.Unavailable", ["reason": .string(reason)])

        case .other(let name, let parameters): (name, parameters)
        }
    }

    /// An error reply read back into its case: the table above, the other way. A reply this
    /// table would not have written (a missing parameter) stays `other`, as it was sent.
    public init(name: String, parameters: [String: JSONValue]) {
        let string = { (key: String) in parameters[key]?.stringValue }
        let int = { (key: String) in parameters[key]?.intValue }
        let read: APIError? =
            switch name {
            case "org.varlink.service.InvalidParameter": string("parameter").map { .invalidParameter($0) }
            case "org.varlink.service.PermissionDenied": .permissionDenied
            case "org.varlink.service.InterfaceNotFound": string("interface").map { .interfaceNotFound($0) }
            case "org.varlink.service.MethodNotFound": string("method").map { .methodNotFound($0) }
            case "io.ukey.AuditUnavailable": string("reason").map { .auditUnavailable(reason: $0) }
            case "io.ukey.InternalError": .internalError
            case "io.ukey.Admin.NotInitialized": .notInitialized
            case "io.ukey.Admin.AlreadyInitialized": .alreadyInitialized
            case "io.ukey.Admin.InvalidArgument": string("reason").map { .invalidArgument(reason: $0) }
            case "io.ukey.Admin.PolicyRejected": string("reason").map { .policyRejected(reason: $0) }
            case "io.ukey.Admin.BadSoPin": int("retriesLeft").map { .badSOPIN(retriesLeft: $0) }
            case "io.ukey.Admin.TokenLocked": .tokenLocked
            case "io.ukey.Boot.NoPolicy": .noPolicy
            case "io.ukey.Boot.UnknownEntity": string("entity").map { .unknownEntity($0) }
            case "io.ukey.Boot.UnknownComponent":
                string("entity").flatMap { e in string("component").map { .unknownComponent(entity: e, component: $0) }
                }
            case "io.ukey.Boot.CannotHash":
                string("path").flatMap { p in string("reason").map { .cannotHash(path: p, reason: $0) } }
            case "io.ukey.Boot.JournalFull":
                int("limit").flatMap { l in string("reason").map { .journalFull(limit: l, reason: $0) } }
            case "io.ukey.Boot.StateNotAccepted":
                string("entity").flatMap { e in string("reason").map { .stateNotAccepted(entity: e, reason: $0) } }
            case "io.ukey.Auth.BadPin": int("retriesLeft").map { .badPIN(retriesLeft: $0) }
            case "io.ukey.Auth.PinLocked": .pinLocked
            case "io.ukey.Auth.UnknownUser": .unknownUser
            case "io.ukey.Auth.Busy": string("reason").map { .loginBusy(reason: $0) }
            case "io.ukey.Token.UnknownCertificate": string("name").map { .unknownCertificate($0) }
            case "io.ukey.Token.RestrictedKey": string("key").map { .restrictedKey($0) }
            case "io.ukey.Token.SessionRequired": .sessionRequired
            case "io.ukey.Token.Unavailable": string("reason").map { .tokenUnavailable(reason: $0) }
            default: nil
            }
        self = read ?? .other(name: name, parameters: parameters)
    }
}
