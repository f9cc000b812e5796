/// Why a service refused or failed a call, in the services' own terms. The varlink names and
/// parameters a client sees are given to these in one table (`Wire/ErrorTable.swift`), so a
/// service never spells a wire error, and an error's wire form is changed in one place.
enum ServiceError: Error, Sendable, Equatable {
    // Any interface.
    case invalidParameter(String)
    case permissionDenied
    case interfaceNotFound(String)
    case methodNotFound(String)
    case auditUnavailable(reason: String)
    /// The detail goes to the log only; the client learns nothing of the daemon's insides.
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
}
