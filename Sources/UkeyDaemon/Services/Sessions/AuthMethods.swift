import Foundation
import UkeyToken

/// `io.ukey.Auth`: a PIN for a session (bound to the uid that logged in), or for a one-time
/// ticket to start one VM.
extension Auth.Login: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let sessions = call.services.sessions
        guard sessions.logins.enter(call.caller) else {
            throw .loginBusy(
                reason:
                    "this process already has \(LoginLimiter.perPeer) logins waiting for their PIN checks; wait for their answers"
            )
        }
        defer { sessions.logins.leave(call.caller) }
        let token = try call.services.tokens.require()
        let logger = call.services.logger
        let verdict: PinVerdict
        do {
            verdict = try await token.users.verifyPIN(user: request.user, pin: request.pin)
        } catch {
            throw APIError(error)
        }
        switch verdict {
        case .accepted:
            let roles = (try? await token.roles(of: request.user)) ?? []
            let certificate: String
            do {
                certificate = try IdentityCA.pem(await token.certificate(named: request.user))
            } catch {
                throw APIError(error)
            }
            if let vm = request.forVm {
                let (id, ticket) = sessions.issueTicket(user: request.user, vm: vm)
                logger.info("login: \(request.user), a start ticket for \(vm)")
                return Reply(
                    session: nil,
                    ticket: id,
                    expires: Self.timestamp(ticket.expires),
                    roles: roles,
                    certificate: certificate
                )
            }
            let (id, session) = sessions.open(user: request.user, roles: roles, for: call.caller)
            logger.info("login: \(request.user) (uid \(call.caller.uid))")
            return Reply(
                session: id,
                ticket: nil,
                expires: Self.timestamp(session.expires),
                roles: roles,
                certificate: certificate
            )
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

extension Auth.Logout: ServedMethod {

    /// Only the uid that logged in may end its session; any other gets SessionRequired.
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Empty {
        guard call.services.sessions.close(request.session, for: call.caller) else { throw .sessionRequired }
        return Empty()
    }
}

extension Auth.Login {
    /// RFC 3339, UTC, as the reply gives `expires`.
    static func timestamp(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }
}
