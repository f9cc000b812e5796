import Foundation
import Synchronization

/// Logged-in users, start tickets, and the logins waiting for their PIN checks: the state of
/// `io.ukey.Auth`, read by the boot service (a user VM needs its user's ticket or session) and
/// the token's Sign.
final class SessionService: Sendable {
    private let table = Mutex(SessionTable())
    private let tickets = Mutex(StartTickets())
    let clock: @Sendable () -> Date
    let logins = LoginLimiter()

    init(clock: @escaping @Sendable () -> Date) {
        self.clock = clock
    }

    func open(user: String, roles: [String], for caller: Caller) -> (id: String, session: SessionTable.Session) {
        let now = clock()
        return table.withLock { $0.open(user: user, roles: roles, uid: caller.uid, now: now) }
    }

    /// The session if it exists, has not expired and is the caller's uid's.
    func lookup(_ id: String, for caller: Caller) -> SessionTable.Session? {
        let now = clock()
        return table.withLock { $0.lookup(id, uid: caller.uid, now: now) }
    }

    /// Closes the caller's session; false when the caller's uid has none by that id.
    func close(_ id: String, for caller: Caller) -> Bool {
        table.withLock { $0.close(id, uid: caller.uid) }
    }

    func issueTicket(user: String, vm: String) -> (id: String, ticket: StartTickets.Ticket) {
        let now = clock()
        return tickets.withLock { $0.issue(user: user, vm: vm, now: now) }
    }

    /// Who `credential` (a start ticket, or the caller's own session) authorises to start the
    /// user VM `entity`, or why not.
    func startAuthority(_ credential: String?, entity: String, caller: Caller) -> StartTickets.Authority {
        guard let credential else { return .refused("authentication-required") }
        let now = clock()
        if let authority = tickets.withLock({ $0.redeem(credential, entity: entity, pid: caller.pid, now: now) }) {
            return authority
        }
        return table.withLock { table in
            if let session = table.lookup(credential, uid: caller.uid, now: now) { return .user(session.user) }
            // Another uid's session is refused as such: a start by a process of another uid
            // takes a start ticket (ukeyctl login --for-vm), never the session itself.
            if table.belongsToAnother(credential, uid: caller.uid, now: now) {
                return .refused("session-of-another-uid")
            }
            return .refused("authentication-required")
        }
    }

    /// The start of `vm` is over: the tickets it took are spent.
    func endStart(of vm: String) {
        _ = tickets.withLock { $0.spend(vm: vm) }
    }
}
