import Foundation

/// One-time tickets to start one user VM (`Auth.Login` with `forVm`). A libvirt domain carries
/// what authorises its start in its XML, which any local user may read (`virsh -r dumpxml`), so
/// it must carry nothing reusable: not the user's session, but a ticket that names the VM and
/// serves one start. The first `Boot.Measure` that presents it takes it for the calling process
/// (the gate measures a start's components on one connection); it then serves only that
/// process, and `Boot.Started` or `Boot.Release` of the VM spends it.
struct StartTickets {
    struct Ticket: Sendable {
        let user: String
        let vm: String
        let expires: Date
        /// The process whose start took it, once one has.
        var takenBy: Int32?
    }

    /// What a credential in `Boot.Measure` amounts to for a user VM's start.
    enum Authority: Sendable, Equatable {
        case user(String)
        /// Not authorised; the reason is the measurement's `reason`.
        case refused(String)
    }

    /// A ticket not used within this long is void (the user logs in again).
    static let lifetime: TimeInterval = 10 * 60
    static let maxTickets = 10_000
    private var tickets: [String: Ticket] = [:]
    /// Spent tickets, until they would have expired: to say "spent" rather than "unknown".
    private var spent: [String: Date] = [:]

    mutating func issue(user: String, vm: String, now: Date) -> (id: String, ticket: Ticket) {
        if tickets.count >= Self.maxTickets { tickets = tickets.filter { $0.value.expires > now } }
        if spent.count >= Self.maxTickets { spent = spent.filter { $0.value > now } }
        let id = SessionTable.newID()
        let ticket = Ticket(user: user, vm: vm, expires: now + Self.lifetime, takenBy: nil)
        tickets[id] = ticket
        return (id, ticket)
    }

    /// nil when `id` is no ticket; otherwise whether it authorises `pid`'s start of `entity`
    /// (taking it for `pid` if no process has yet).
    mutating func redeem(_ id: String, entity: String, pid: Int32, now: Date) -> Authority? {
        if let until = spent[id], until > now { return .refused("start-ticket-spent") }
        guard var ticket = tickets[id] else { return nil }
        guard ticket.expires > now else {
            tickets[id] = nil
            return .refused("start-ticket-expired")
        }
        guard ticket.vm == entity else { return .refused("start-ticket-for-another-vm") }
        switch ticket.takenBy {
        case nil:
            ticket.takenBy = pid
            tickets[id] = ticket
        case pid?: break
        case _?: return .refused("start-ticket-spent")
        }
        return .user(ticket.user)
    }

    /// The start of `vm` is over (QEMU is up, or gone): every ticket a start of it took is spent.
    /// Returns how many.
    @discardableResult
    mutating func spend(vm: String) -> Int {
        let taken = tickets.filter { $0.value.vm == vm && $0.value.takenBy != nil }
        for (id, ticket) in taken {
            tickets[id] = nil
            spent[id] = ticket.expires
        }
        return taken.count
    }
}
