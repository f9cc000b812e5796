import Foundation
import UkeyToken
import UkeyVarlink

/// `io.ukey.Auth`: a PIN for a session.
extension DaemonCore {
    func login(user: String, pin: String) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        let verdict: PinVerdict
        do {
            verdict = try await token.verifyPIN(user: user, pin: pin)
        } catch {
            throw DaemonErrors.from(error)
        }
        switch verdict {
        case .accepted:
            let roles = (try? await token.roles(of: user)) ?? []
            let (id, session) = sessions.open(user: user, roles: roles, now: clock())
            let certificate: String
            do {
                certificate = try IdentityCA.pem(await token.certificate(named: user))
            } catch {
                throw DaemonErrors.from(error)
            }
            logger.info("login: \(user)")
            return [
                "session": .string(id),
                "expires": .string(ISO8601DateFormatter().string(from: session.expires)),
                "roles": .array(roles.map(JSONValue.string)),
                "certificate": .string(certificate),
            ]
        case .rejected(let left):
            logger.notice("login: bad PIN for \(user), \(left) tries left")
            throw VarlinkError("io.ukey.Auth.BadPin", ["retriesLeft": .int(left)])
        case .locked:
            logger.notice("login: PIN locked for \(user)")
            throw VarlinkError("io.ukey.Auth.PinLocked")
        case .unknownUser:
            throw VarlinkError("io.ukey.Auth.UnknownUser")
        }
    }

    func logout(session: String) -> [String: JSONValue] {
        _ = sessions.close(session)
        return [:]
    }
}
