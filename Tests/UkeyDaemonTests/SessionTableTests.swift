import Foundation
import Testing

@testable import UkeyDaemon

@Suite("session ids")
struct SessionTableTests {
    @Test("a session id is 64 lower-case hex digits, never one a command line takes for an option, and unique")
    func ids() {
        var table = SessionTable()
        var seen = Set<String>()
        let hex = Set("0123456789abcdef")
        for n in 0..<2_000 {
            let (id, _) = table.open(user: "alice", roles: [], now: Date())
            #expect(id.count == 64 && id.allSatisfy(hex.contains), "\(id)")
            #expect(seen.insert(id).inserted, "id \(n) repeats")
        }
        let (id, _) = table.open(user: "bob", roles: ["dev"], now: Date())
        #expect(table.lookup(id, now: Date())?.user == "bob")
        #expect(table.lookup(id, now: Date() + SessionTable.lifetime + 1) == nil, "an expired session is still served")
    }
}
