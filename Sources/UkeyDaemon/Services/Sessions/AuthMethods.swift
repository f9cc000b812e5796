import Foundation
import UkeyToken

/// `io.ukey.Auth`: a PIN for a session.
enum Auth {
    enum Login: ServiceMethod {
        static let name = "io.ukey.Auth.Login"
        static let role: Role? = .hypervisor

        struct Request: Sendable {
            let user: String
            let pin: String
        }

        struct Reply: Sendable {
            let session: String
            let expires: Date
            let roles: [String]
            let certificate: String
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let sessions = call.services.sessions
            guard sessions.logins.enter(call.caller) else {
                throw .loginBusy(reason: "this process already has \(LoginLimiter.perPeer) logins waiting for their PIN checks; wait for their answers")
            }
            defer { sessions.logins.leave(call.caller) }
            let token = try call.services.tokens.require()
            let logger = call.services.logger
            let verdict: PinVerdict
            do {
                verdict = try await token.verifyPIN(user: request.user, pin: request.pin)
            } catch {
                throw ServiceError(error)
            }
            switch verdict {
            case .accepted:
                let roles = (try? await token.roles(of: request.user)) ?? []
                let (id, session) = sessions.open(user: request.user, roles: roles)
                let certificate: String
                do {
                    certificate = try IdentityCA.pem(await token.certificate(named: request.user))
                } catch {
                    throw ServiceError(error)
                }
                logger.info("login: \(request.user)")
                return Reply(session: id, expires: session.expires, roles: roles, certificate: certificate)
            case .rejected(let left):
                logger.notice("login: bad PIN for \(request.user), \(left) tries left")
                throw .badPIN(retriesLeft: left)
            case .locked:
                logger.notice("login: PIN locked for \(request.user)")
                throw .pinLocked
            case .unknownUser:
                throw .unknownUser
            }
        }
    }

    enum Logout: ServiceMethod {
        static let name = "io.ukey.Auth.Logout"
        static let role: Role? = .hypervisor

        struct Request: Sendable {
            let session: String
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> EmptyReply {
            call.services.sessions.close(request.session)
            return EmptyReply()
        }
    }
}
