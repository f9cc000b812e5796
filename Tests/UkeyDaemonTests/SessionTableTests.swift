import Foundation
import Testing

@testable import UkeyDaemon

@Suite("session ids and start tickets")
struct SessionTableTests {
    @Test("a session id is 64 lower-case hex digits, never one a command line takes for an option, and unique")
    func ids() {
        var table = SessionTable()
        var seen = Set<String>()
        let hex = Set("0123456789abcdef")
        for n in 0..<2_000 {
            let (id, _) = table.open(user: "alice", roles: [], uid: 0, now: Date())
            #expect(id.count == 64 && id.allSatisfy(hex.contains), "\(id)")
            #expect(seen.insert(id).inserted, "id \(n) repeats")
        }
        let (id, _) = table.open(user: "bob", roles: ["dev"], uid: 1000, now: Date())
        #expect(table.lookup(id, uid: 1000, now: Date())?.user == "bob")
        #expect(
            table.lookup(id, uid: 1000, now: Date() + SessionTable.lifetime + 1) == nil,
            "an expired session is still served"
        )
        #expect(table.lookup(id, uid: 0, now: Date()) == nil, "another uid's session is served (root's too)")
        #expect(!table.close(id, uid: 1001) && table.lookup(id, uid: 1000, now: Date()) != nil, "another uid closed it")
        #expect(table.close(id, uid: 1000) && table.lookup(id, uid: 1000, now: Date()) == nil)
    }

    @Test(
        "a start ticket: taken by the first process that presents it for its VM, then only that process's, spent when the start ends; void when expired"
    )
    func tickets() {
        var tickets = StartTickets()
        let now = Date()
        let (id, _) = tickets.issue(user: "alice", vm: "office", now: now)
        #expect(tickets.redeem("not-a-ticket", entity: "office", pid: 10, now: now) == nil)
        #expect(tickets.redeem(id, entity: "dev", pid: 10, now: now) == .refused("start-ticket-for-another-vm"))
        #expect(tickets.spend(vm: "office") == 0, "an untaken ticket was spent by another start's end")
        #expect(tickets.redeem(id, entity: "office", pid: 10, now: now) == .user("alice"))
        #expect(tickets.redeem(id, entity: "office", pid: 10, now: now) == .user("alice"))
        #expect(tickets.redeem(id, entity: "office", pid: 11, now: now) == .refused("start-ticket-spent"))
        #expect(tickets.spend(vm: "office") == 1)
        #expect(tickets.redeem(id, entity: "office", pid: 10, now: now) == .refused("start-ticket-spent"))
        let (late, _) = tickets.issue(user: "alice", vm: "office", now: now)
        #expect(
            tickets.redeem(late, entity: "office", pid: 10, now: now + StartTickets.lifetime + 1)
                == .refused("start-ticket-expired")
        )
    }
}
