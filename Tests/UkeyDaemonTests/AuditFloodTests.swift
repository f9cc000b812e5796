import Foundation
import Testing
import UkeyAudit
import UkeyTesting
import UkeyVarlink

@testable import UkeyDaemon

#if canImport(Glibc)
import Glibc
#endif

/// A guest must not fill the host's disk through the audit log: its denials are counted, not
/// written one by one, and every one of them is still in a count.
@Suite("ukeyd: a guest's exec flood is counted, not written out")
struct AuditFloodTests {
    /// Every denial a set of records accounts for: a record of its own, or counted in a
    /// record's `repeated` (a denial's repeats after its own record, a flood's).
    static func denials(in records: [JSONValue]) -> Int {
        records.reduce(0) { total, record in
            let subject = record["subject"]
            switch record["type"]?.stringValue {
            case "exec"? where subject?["decision"] == "deny": return total + (subject?["repeated"]?.intValue ?? 1)
            case ExecDenialAggregator.floodRecord?: return total + (subject?["repeated"]?.intValue ?? 0)
            default: return total
            }
        }
    }

    @Test(
        "the aggregator: a repeated denial is one record and a count; past the channel's budget, one flood count; channels apart; every denial counted"
    )
    func aggregator() {
        let aggregator = ExecDenialAggregator()
        let start = Date()
        var written: [AuditEntry] = []
        var sent = 0
        func deny(_ path: String, channel: ExecDenialAggregator.Channel = .guest("office"), at offset: TimeInterval) {
            sent += 1
            written += aggregator.admit(
                AuditEntry(
                    type: "exec",
                    actor: nil,
                    subject: ["vm": "office", "path": .string(path), "decision": "deny"]
                ),
                channel: channel,
                now: start + offset
            )
        }
        for _ in 0..<1000 { deny("/bin/same", at: 1) }
        #expect(written.count == 1, "a repeated denial is recorded once as it happens")
        for n in 0..<5000 { deny("/tmp/x\(n)", at: 2) }
        #expect(
            written.count == ExecDenialAggregator.recordsPerChannel,
            "past its budget a channel's distinct denials are counted"
        )
        deny("/bin/other-channel", channel: .guest("dev"), at: 3)
        #expect(written.count == ExecDenialAggregator.recordsPerChannel + 1, "another channel has its own budget")
        // The next interval: the ended counts come first, then the new denial.
        deny("/bin/same", at: 11)
        written += aggregator.flush(now: start + 30, all: true)
        let flood = written.filter { $0.type == ExecDenialAggregator.floodRecord }
        #expect(
            flood.count == 1
                && flood.first?.subject["paths"] == .int(5000 - (ExecDenialAggregator.recordsPerChannel - 1))
        )
        let total = written.reduce(0) { total, entry in
            switch entry.type {
            case "exec":
                guard case .int(let n)? = entry.subject["repeated"] else { return total + 1 }
                return total + n
            default:
                guard case .int(let n)? = entry.subject["repeated"] else { return total }
                return total + n
            }
        }
        #expect(total == sent, "every denial is in a record or a count")
        // A host caller's distinct denials are each recorded; its repeats are counted.
        let host = ExecDenialAggregator()
        let recorded = (0..<500).flatMap { n in
            host.admit(
                AuditEntry(type: "exec", actor: nil, subject: ["path": .string("/h/\(n % 250)"), "decision": "deny"]),
                channel: .host(uid: 0),
                now: start
            )
        }
        #expect(recorded.count == 250)
    }

    @Test(
        "a 10 s flood of denied execs down a guest's channel grows the audit directory by under 5 MB; the records count every denial; a VM start during the flood works"
    )
    func guestFlood() throws {
        let f = try DaemonFixture()
        let office = try GuestChannelTests.HostEnd(path: f.daemon.runtimeDirectory + "/guard/office.sock")
        try office.accept(within: 5)
        try f.bootHost()
        let state = f.daemon.stateDirectory
        func auditBytes() throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: state).filter {
                $0.hasPrefix("audit") && $0.hasSuffix(".log")
            }.reduce(0) {
                $0 + ((try FileManager.default.attributesOfItem(atPath: state + "/" + $1)[.size] as? Int) ?? 0)
            }
        }
        let before = try auditBytes()
        let startSeq = try f.daemon.call("io.ukey.Audit.Query", ["since": 1, "limit": 1000])["next"]?.intValue ?? 1

        // The guest: batches of 200 items, half one path again and again, half paths never seen.
        var sent = 0
        var batch = 0
        let until = Date() + 10
        var startedDuringFlood = false
        while Date() < until {
            let items: [JSONValue] = (0..<200).map { n in
                .object([
                    "path": .string(n % 2 == 0 ? "/tmp/evil" : "/tmp/evil-\(batch)-\(n)"),
                    "digest": .string("sha256:" + String(repeating: "e", count: 64)),
                ])
            }
            let reply = try office.call("io.ukey.Runtime.CheckExecBatch", ["items": .array(items)])
            #expect(reply.error == nil, "\(reply)")
            sent += reply.parameters["results"]?.arrayValue?.filter { $0["decision"] == "deny" }.count ?? 0
            batch += 1
            if !startedDuringFlood, Date() > until - 5 {
                // A user VM starts while the guest floods: its measurements are recorded and answered.
                let alice = try #require(
                    try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]?
                        .stringValue
                )
                #expect(try f.measureByPath("office", session: alice).allSatisfy { $0["load"] == true })
                startedDuringFlood = true
            }
        }
        #expect(sent > 10_000, "the flood sent \(sent) denials in \(batch) batches")
        let grown = try auditBytes() - before
        #expect(grown < 5 << 20, "the audit directory grew by \(grown) bytes")

        // Stopping flushes every count; then the records account for every denial.
        f.daemon.stop()
        try f.daemon.start()
        var records: [JSONValue] = []
        var since = startSeq
        while true {
            let page = try f.daemon.call("io.ukey.Audit.Query", ["since": .int(since), "limit": 1000])
            let got = page["records"]?.arrayValue ?? []
            records += got
            guard got.count == 1000, let next = page["next"]?.intValue else { break }
            since = next
        }
        let guestRecords = records.filter { $0["subject"]?["vm"] == "office" && $0["actor"]?["role"] == "guest" }
        #expect(
            Self.denials(in: guestRecords) == sent,
            "records count \(Self.denials(in: guestRecords)) of \(sent) denials"
        )
        #expect(records.contains { $0["type"]?.stringValue == ExecDenialAggregator.floodRecord })
        #expect(try f.daemon.call("io.ukey.Audit.Verify")["ok"] == true)
        print(
            "flood: \(sent) denials in \(batch) batches of 200; the audit directory grew \(grown) bytes; \(guestRecords.count) records"
        )
    }
}
