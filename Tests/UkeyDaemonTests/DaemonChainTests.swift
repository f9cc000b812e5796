import Foundation
import Testing
import UkeyClient
import UkeyCore
import UkeyTesting
import UkeyToken
import UkeyVarlink

@Suite("ukeyd: the boot chain over the socket")
struct DaemonChainTests {
    @Test("before initialisation every service call is NotInitialized; introspection and Status work")
    func notInitialized() throws {
        let daemon = try TestDaemon()
        #expect { try daemon.call("io.ukey.Boot.Chain") } throws: {
            VarlinkError.named("io.ukey.Admin.NotInitialized")($0)
        }
        #expect {
            try daemon.call(
                "io.ukey.Boot.Measure",
                [
                    "entity": "vmm", "component": "kernel",
                    "digest": .string("sha256:" + String(repeating: "0", count: 64)),
                ]
            )
        } throws: { VarlinkError.named("io.ukey.Admin.NotInitialized")($0) }
        #expect(try daemon.call("io.ukey.Admin.Status")["initialized"] == false)
        #expect(try daemon.call("org.varlink.service.GetInfo")["product"] == "ukeyd")
    }

    @Test("in order, every entity becomes trusted; measurements land in the registers and the event log")
    func inOrder() throws {
        let f = try DaemonFixture()
        try f.bootHost()
        for entity in ["vmm", "io-vm", "io-loader", "io-kernel", "mgmt-vm", "debian-base"] {
            #expect(try f.state(entity).state == "trusted", "\(entity)")
        }
        let log = try f.daemon.call("io.ukey.Boot.EventLog")
        let bytes = Array(Data(base64Encoded: log["data"]!.stringValue!)!)
        let parsed = try EventLog(parsing: bytes)
        #expect(parsed.events.count == 11)
        #expect(log["format"] == "tcg-pfp")
    }

    @Test(
        "pipelined measurements on one connection share batches yet are answered in order; a call after them sees them all"
    )
    func pipelinedMeasurements() throws {
        let f = try DaemonFixture()
        let kernel = try f.expected("vmm", "kernel")
        let qemu = try f.expected("vmm", "qemu")
        let batchesBefore = try f.daemon.call("io.ukey.Admin.Status")["measurementBatches"]?.intValue ?? -1
        let connection = try f.daemon.connect()
        // 120 measurements written before any reply is read, one of them naming no entity,
        // then a call that is not a measurement.
        for index in 0..<120 {
            let (entity, component, digest) =
                index == 57
                ? ("nobody", "kernel", kernel)
                : ("vmm", index % 2 == 0 ? "kernel" : "qemu", index % 2 == 0 ? kernel : qemu)
            try connection.send(
                VarlinkCall(
                    method: "io.ukey.Boot.Measure",
                    parameters: ["entity": .string(entity), "component": .string(component), "digest": .string(digest)]
                )
            )
        }
        try connection.send(VarlinkCall(method: "io.ukey.Boot.EventLog"))
        // A recorded call after them (a denial): its audit record must follow theirs.
        try connection.send(
            VarlinkCall(
                method: "io.ukey.Runtime.CheckExec",
                parameters: [
                    "vm": "office", "path": "/usr/bin/nc",
                    "digest": .string("sha256:" + String(repeating: "2", count: 64)),
                ]
            )
        )
        var indices: [Int] = []
        for index in 0..<120 {
            let reply = try connection.receive()
            if index == 57 {
                #expect(reply.error == "io.ukey.Boot.UnknownEntity")
            } else {
                #expect(reply.error == nil && reply.parameters["register"] == 8, "\(index): \(reply)")
                indices.append(reply.parameters["eventIndex"]?.intValue ?? -1)
            }
        }
        // Each answer is its own event, in the order the calls were written.
        #expect(indices == Array(indices.first!..<(indices.first! + 119)))
        let log = try connection.receive()
        let events = try EventLog(parsing: Array(Data(base64Encoded: log.parameters["data"]!.stringValue!)!)).events
        #expect(events.count == 119)
        #expect(try connection.receive().parameters["decision"] == "deny")
        // They were committed together: fewer batches (journal fsyncs) than measurements. How
        // many fewer depends on how the drainer and the reader interleave (10 to 82 here), so
        // the claim checked is that batches were shared at all.
        let batches = (try f.daemon.call("io.ukey.Admin.Status")["measurementBatches"]?.intValue ?? -1) - batchesBefore
        #expect(batchesBefore >= 0 && (1..<120).contains(batches), "120 pipelined measurements took \(batches) batches")
        print("pipelinedMeasurements: 120 measurements in \(batches) batches")
        // The audit log has this connection's calls in the order it made them.
        let records =
            try f.daemon.call("io.ukey.Audit.Query", ["since": 1, "limit": 1000])["records"]?.arrayValue ?? []
        let measures = records.filter { $0["type"] == "measure" }.compactMap { $0["seq"]?.intValue }
        let exec = records.first { $0["type"] == "exec" }?["seq"]?.intValue
        #expect(measures.count == 120)
        #expect(exec != nil && measures.allSatisfy { $0 < exec! })
        #expect(records.filter { $0["type"] == "measure" }[57]["subject"]?["error"] == "io.ukey.Boot.UnknownEntity")
    }

    @Test("a tampered image: untrusted with digest-mismatch, load false, descendants tainted")
    func tampered() throws {
        let f = try DaemonFixture()
        try f.measureByPath("vmm")
        let base = f.images.path + "/var/lib/libvirt/images/debian-12-base.qcow2"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: base))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("rootkit".utf8))
        try handle.close()
        let reply = try f.measureByPath("debian-base")[0]
        #expect(reply["verdict"] == "untrusted" && reply["match"] == false && reply["load"] == false)
        #expect(reply["reason"] == "digest-mismatch")
        #expect(try f.state("office").reason == "ancestor-untrusted")
        #expect(try f.state("dev").state == "untrusted")
    }

    @Test("out of order: parent-not-trusted, for good in this boot; a reset starts over")
    func outOfOrder() throws {
        let f = try DaemonFixture()
        let early = try f.measureByPath("io-vm")
        #expect(
            early.last?["verdict"] == "untrusted" && early.last?["reason"] == "parent-not-trusted"
                && early.last?["load"] == false
        )
        try f.measureByPath("vmm")
        let late = try f.measureByPath("io-vm")
        #expect(late.last?["verdict"] == "untrusted" && late.last?["load"] == false)
        let newBoot = try f.daemon.call("io.ukey.Boot.Reset")["bootId"]?.stringValue
        let chain = try f.daemon.call("io.ukey.Boot.Chain")
        #expect(chain["bootId"]?.stringValue == newBoot)
        #expect(chain["entities"]?.arrayValue?.allSatisfy { $0["state"] == "pending" } == true)
        try f.measureByPath("vmm")
        try f.measureByPath("io-vm")
        #expect(try f.state("io-vm").state == "trusted")
    }

    @Test("digest mode, unknown names, bad parameters")
    func digestModeAndErrors() throws {
        let f = try DaemonFixture()
        let connection = try f.daemon.connect()
        let good = try connection.call(
            "io.ukey.Boot.Measure",
            ["entity": "vmm", "component": "kernel", "digest": .string(try f.expected("vmm", "kernel"))]
        )
        #expect(
            good["match"] == true && good["verdict"] == "pending" && good["register"] == 8 && good["eventIndex"] == 0
        )
        #expect {
            try connection.call(
                "io.ukey.Boot.Measure",
                ["entity": "nope", "component": "kernel", "digest": good["register"]!]
            )
        } throws: {
            VarlinkError.named("org.varlink.service.InvalidParameter")($0)
        }
        #expect {
            try connection.call(
                "io.ukey.Boot.Measure",
                ["entity": "nope", "component": "kernel", "digest": .string(try f.expected("vmm", "kernel"))]
            )
        } throws: {
            VarlinkError.named("io.ukey.Boot.UnknownEntity")($0)
        }
        #expect {
            try connection.call(
                "io.ukey.Boot.Measure",
                ["entity": "vmm", "component": "nope", "digest": .string(try f.expected("vmm", "kernel"))]
            )
        } throws: {
            VarlinkError.named("io.ukey.Boot.UnknownComponent")($0)
        }
        #expect {
            try connection.call(
                "io.ukey.Boot.Measure",
                ["entity": "vmm", "component": "kernel", "path": "/nonexistent"]
            )
        } throws: {
            VarlinkError.named("io.ukey.Boot.CannotHash")($0)
        }
        #expect { try connection.call("io.ukey.Boot.Nope") } throws: {
            VarlinkError.named("org.varlink.service.MethodNotFound")($0)
        }
        #expect { try connection.call("io.nope.X.Y") } throws: {
            VarlinkError.named("org.varlink.service.InterfaceNotFound")($0)
        }
        // With neither digest nor path, ukeyd hashes the policy's file hint.
        let hinted = try connection.call("io.ukey.Boot.Measure", ["entity": "vmm", "component": "initrd"])
        #expect(hinted["match"] == true)
    }

    @Test("audit mode records untrusted but lets it load")
    func auditMode() throws {
        let f = try DaemonFixture()
        try f.daemon.call("io.ukey.Admin.SetMode", ["mode": "audit"])
        let reply = try f.measureByPath("io-vm").last!
        #expect(reply["verdict"] == "untrusted" && reply["load"] == true)
        #expect(try f.daemon.call("io.ukey.Admin.Status")["mode"] == "audit")
    }

    @Test("user VMs need a logged-in user whose policy lists them")
    func userVMGating() throws {
        let f = try DaemonFixture()
        try f.bootHost()
        let refused = try f.measureByPath("office").last!
        #expect(refused["verdict"] == "trusted" && refused["match"] == true && refused["load"] == false)
        #expect(refused["reason"] == "authentication-required")
        let alice = try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]!
            .stringValue!
        #expect(try f.measureByPath("office", session: alice).last?["load"] == true)
        let notHers = try f.measureByPath("dev", session: alice).last!
        #expect(notHers["load"] == false && notHers["reason"] == "user-not-allowed")
        try f.daemon.call("io.ukey.Auth.Logout", ["session": .string(alice)])
        #expect(try f.measureByPath("office", session: alice).last?["reason"] == "authentication-required")
    }

    @Test("a policy reload that moves an entity to another register keeps the event log true to the registers")
    func reloadKeepsLogTrue() throws {
        let f = try DaemonFixture()
        try f.measureByPath("vmm")
        try f.measureByPath("io-vm")
        let moved = f.policyText
            .replacingOccurrences(of: "version: 1", with: "version: 2")
            .replacingOccurrences(
                of: "kind: service-vm\n    register: 9\n    components:\n      - name: firmware",
                with: "kind: service-vm\n    register: 15\n    components:\n      - name: firmware"
            )
        #expect(
            moved != f.policyText.replacingOccurrences(of: "version: 1", with: "version: 2"),
            "the edit must move io-vm"
        )
        try f.loadPolicy(moved)
        f.daemon.kill9()
        try f.daemon.start()  // the journal is replayed under the new policy
        let quote = try f.daemon.call("io.ukey.Boot.Quote", ["nonce": "AQID", "registers": [8, 9, 15]])
        let log = try EventLog(
            parsing: Array(Data(base64Encoded: try f.daemon.call("io.ukey.Boot.EventLog")["data"]!.stringValue!)!)
        )
        let replayed = log.replay().banks[.sha256]!.values
        // The quote (of either format) verifies against the replayed values.
        try f.checkQuote(quote, nonce: [1, 2, 3], against: replayed)
        // io-vm's measurements stay in register 9, where they were extended.
        #expect(replayed[9] != [UInt8](repeating: 0, count: 32))
        #expect(replayed[15] == [UInt8](repeating: 0, count: 32))
    }

    @Test("a daemon restart (even kill -9) keeps this boot's chain: no second chance to measure")
    func restartKeepsChain() throws {
        let f = try DaemonFixture()
        try f.measureByPath("io-vm")  // broken chain
        try f.measureByPath("vmm")
        let before = try f.daemon.call("io.ukey.Boot.Chain")
        f.daemon.kill9()
        try f.daemon.start()
        let after = try f.daemon.call("io.ukey.Boot.Chain")
        #expect(after["bootId"] == before["bootId"])
        #expect(try f.state("io-vm").reason == "parent-not-trusted")
        #expect(try f.state("vmm").state == "trusted")
        // The registers were rebuilt too: a quote after the restart verifies against the replayed
        // log, and the quoted registers are the ones from before (registers reset to zero, or
        // rebuilt wrongly, would not be).
        let log = try EventLog(
            parsing: Array(Data(base64Encoded: try f.daemon.call("io.ukey.Boot.EventLog")["data"]!.stringValue!)!)
        )
        #expect(log.events.count == 6)
        let replayed = log.replay().banks[.sha256]!.values
        #expect(replayed[8] != [UInt8](repeating: 0, count: 32))
        let nonce = Array("after-restart".utf8)
        let quote = try f.daemon.call(
            "io.ukey.Boot.Quote",
            ["nonce": .string(Data(nonce).base64EncodedString()), "registers": [8, 9]]
        )
        try f.checkQuote(quote, nonce: nonce, against: replayed)
    }
}
