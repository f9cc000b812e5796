import Foundation
import NIOConcurrencyHelpers

/// Logged-in users and the logins waiting for their PIN checks: the state of `io.ukey.Auth`,
/// read by the boot service (a user VM needs its user's session) and the token's Sign.
final class SessionService: Sendable {
    private let table = NIOLockedValueBox(SessionTable())
    let clock: @Sendable () -> Date
    let logins = LoginLimiter()

    init(clock: @escaping @Sendable () -> Date) {
        self.clock = clock
    }

    func open(user: String, roles: [String]) -> (id: String, session: SessionTable.Session) {
        let now = clock()
        return table.withLockedValue { $0.open(user: user, roles: roles, now: now) }
    }

    /// The session if it exists and has not expired.
    func lookup(_ id: String) -> SessionTable.Session? {
        let now = clock()
        return table.withLockedValue { $0.lookup(id, now: now) }
    }

    func close(_ id: String) {
        _ = table.withLockedValue { $0.close(id) }
    }
}
