import Foundation
import Testing
import UkeyTesting
import UkeyVarlink

#if canImport(Glibc)
import Glibc
#endif

/// A VM's guard channel, from the guest's side: the test binds `<vm>.sock` in ukeyd's guard
/// directory as QEMU does for `<channel type='unix'><source mode='bind' .../>`, ukeyd connects
/// to it, and the test writes what a guest could write down the virtio-serial port.
@Suite("ukeyd serves each VM's guard channel as that VM's, and nothing more")
struct GuestChannelTests {
    /// The host end of one VM's channel, as QEMU holds it: a listening socket; ukeyd connects.
    final class HostEnd {
        let listener: Int32
        var connection: Int32 = -1
        var pending: [UInt8] = []

        init(path: String) throws {
            listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard bound == 0, listen(listener, 1) == 0 else {
                throw TestDaemonError("cannot bind \(path): \(String(cString: strerror(errno)))")
            }
        }

        deinit {
            if connection >= 0 { close(connection) }
            close(listener)
        }

        /// Waits for ukeyd to connect (it looks every second).
        func accept(within seconds: Double) throws {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(seconds * 1000)) == 1 else {
                throw TestDaemonError("ukeyd did not connect to the channel within \(seconds) s")
            }
            connection = Glibc.accept(listener, nil, nil)
            guard connection >= 0 else { throw TestDaemonError("accept: \(String(cString: strerror(errno)))") }
        }

        func write(_ bytes: [UInt8]) {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes {
                    Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
                guard n > 0 else { return }
                offset += n
            }
        }

        /// The next reply, within 10 s.
        func reply() throws -> VarlinkReply {
            while true {
                if let end = pending.firstIndex(of: 0) {
                    let message = Array(pending[..<end])
                    pending.removeFirst(end + 1)
                    return try VarlinkCodec.decodeReply(message)
                }
                var poller = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 10_000) == 1 else { throw TestDaemonError("no reply within 10 s") }
                var buffer = [UInt8](repeating: 0, count: 65_536)
                let n = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
                guard n > 0 else { throw TestDaemonError("ukeyd closed the channel") }
                pending += buffer[0..<n]
            }
        }

        func call(_ method: String, _ parameters: [String: JSONValue] = [:]) throws -> VarlinkReply {
            write(VarlinkFraming.frame(VarlinkCodec.encode(VarlinkCall(method: method, parameters: parameters))))
            return try reply()
        }
    }

    static let soffice = "sha256:5f0c3c1e2c0a3b1f3e1c55f2b3e2c1f0a9d8c7b6a5f4e3d2c1b0a99887766554"

    @Test(
        "the VM is the channel's: a guest's CheckExec is about its own VM (vm-not-trusted until it is, then its whitelist); it cannot name another VM, call any other method, or break the channel with garbage; each answer is audited as the guest's"
    )
    func guestChannel() throws {
        let f = try DaemonFixture()
        let office = try HostEnd(path: f.daemon.runtimeDirectory + "/guard/office.sock")
        try office.accept(within: 5)
        let exec: [String: JSONValue] = ["path": "/usr/bin/soffice", "digest": .string(Self.soffice)]

        // Not yet trusted in this boot: deny, whatever the list says.
        #expect(try office.call("io.ukey.Runtime.CheckExec", exec).parameters["reason"] == "vm-not-trusted")
        try f.bootHost()
        let alice = try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]!
            .stringValue!
        try f.measureByPath("office", session: alice)
        let allowed = try office.call("io.ukey.Runtime.CheckExec", exec)
        #expect(allowed.error == nil && allowed.parameters["decision"] == "allow", "\(allowed)")
        // Its own name may be given; the batch's items are bound to it too, and its tag comes back.
        var own = exec
        own["vm"] = "office"
        let batch = try office.call(
            "io.ukey.Runtime.CheckExecBatch",
            ["items": [.object(exec), .object(own)], "tag": "t-1"]
        )
        #expect(batch.parameters["results"]?.arrayValue?.map { $0["decision"] } == ["allow", "allow"], "\(batch)")
        #expect(batch.parameters["tag"] == "t-1")

        // Another VM, by the call or by one item: refused. dev's soffice would be denied anyway;
        // the point is that the answer is not about dev at all.
        var other = exec
        other["vm"] = "dev"
        #expect(try office.call("io.ukey.Runtime.CheckExec", other).error == "org.varlink.service.PermissionDenied")
        #expect(
            try office.call("io.ukey.Runtime.CheckExecBatch", ["items": [.object(exec), .object(other)]]).error
                == "org.varlink.service.PermissionDenied"
        )
        #expect(
            try office.call("io.ukey.Runtime.CheckExecBatch", ["items": [.object(exec)], "vm": "mgmt-vm"]).error
                == "org.varlink.service.PermissionDenied"
        )
        // Any other method, even one every local user may call: refused, and nothing happened.
        let chainBefore = try f.daemon.call("io.ukey.Boot.Chain")
        for (method, parameters) in [
            (
                "io.ukey.Boot.Measure",
                [
                    "entity": "office", "component": "kernel",
                    "digest": .string("sha256:" + String(repeating: "0", count: 64)),
                ]
            ),
            ("io.ukey.Boot.Reset", [:]), ("io.ukey.Boot.Chain", [:]), ("io.ukey.Admin.Status", [:]),
            ("io.ukey.Runtime.GuardEvent", ["vm": "dev", "event": "stop", "mounts": []]),
            ("io.ukey.Boot.Started", ["entity": "office"]),
            ("org.varlink.service.GetInfo", [:]), ("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"]),
            ("io.ukey.Runtime.AllowedFingerprints", ["vm": "office"]),
        ] as [(String, [String: JSONValue])] {
            #expect(try office.call(method, parameters).error == "org.varlink.service.PermissionDenied", "\(method)")
        }
        #expect(try f.daemon.call("io.ukey.Boot.Chain") == chainBefore)

        // Garbage and half a message (a guard killed mid-write): an error, and the channel goes on.
        office.write(Array("{\"method\": \"io.ukey.Runt".utf8))
        office.write([0])
        #expect(try office.reply().error != nil)
        office.write(Array("not json at all".utf8) + [0])
        #expect(try office.reply().error != nil)
        #expect(try office.call("io.ukey.Runtime.CheckExec", exec).parameters["decision"] == "allow")

        // The audit log has each decision with the VM, made by a guest; and the refusals.
        let execs =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "exec", "limit": 100])["records"]?.arrayValue ?? []
        #expect(
            !execs.isEmpty && execs.allSatisfy { $0["subject"]?["vm"] == "office" && $0["actor"]?["role"] == "guest" },
            "\(execs)"
        )
        let denied =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "permission-denied", "limit": 100])["records"]?.arrayValue
            ?? []
        #expect(
            denied.contains { $0["subject"]?["method"] == "io.ukey.Boot.Measure" && $0["actor"]?["role"] == "guest" },
            "\(denied)"
        )
    }

    @Test("a channel whose VM stops and starts again is served again; a socket that is not a VM's name is left alone")
    func reconnects() throws {
        let f = try DaemonFixture()
        let path = f.daemon.runtimeDirectory + "/guard/office.sock"
        var office: HostEnd? = try HostEnd(path: path)
        try office!.accept(within: 5)
        office = nil
        unlink(path)
        office = try HostEnd(path: path)
        try office!.accept(within: 5)
        #expect(
            try office!.call("io.ukey.Runtime.CheckExec", ["path": "/bin/true", "digest": .string(Self.soffice)])
                .parameters["decision"] == "deny"
        )
        let stray = try HostEnd(path: f.daemon.runtimeDirectory + "/guard/not a vm!.sock")
        #expect(throws: TestDaemonError.self) { try stray.accept(within: 2.5) }
    }

    /// Reads until ukeyd closes the channel (true) or `seconds` pass (false).
    static func closedByDaemon(_ end: HostEnd, within seconds: Double) -> Bool {
        let until = Date() + seconds
        while Date() < until {
            var poller = pollfd(fd: end.connection, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) == 1 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            if read(end.connection, &buffer, buffer.count) <= 0 { return true }
        }
        return false
    }

    @Test(
        "a channel is its VM's only while the VM is: ukeyd drops it when the VM is released and when its socket is replaced by another, and serves whatever is bound there next"
    )
    func droppedWhenNotTheVMs() throws {
        let f = try DaemonFixture()
        try f.bootHost()
        let alice = try f.daemon.call("io.ukey.Auth.Login", ["user": "alice", "pin": "alice-p1"])["session"]!
            .stringValue!
        try f.measureByPath("office", session: alice)
        let path = f.daemon.runtimeDirectory + "/guard/office.sock"
        let first = try HostEnd(path: path)
        try first.accept(within: 5)
        #expect(
            try first.call("io.ukey.Runtime.CheckExec", ["path": "/bin/true", "digest": .string(Self.soffice)]).error
                == nil
        )
        // The VM stops (libvirt's release end): the old QEMU's connection is not the VM's any more.
        _ = try f.daemon.call("io.ukey.Boot.Release", ["entity": "office"])
        #expect(Self.closedByDaemon(first, within: 5), "the released VM's channel stayed open")
        // Another process binds the name while the first socket is still held open elsewhere.
        unlink(path)
        let second = try HostEnd(path: path)
        try second.accept(within: 5)
        unlink(path)
        let third = try HostEnd(path: path)
        #expect(Self.closedByDaemon(second, within: 5), "a replaced socket's connection stayed open")
        try third.accept(within: 5)
    }

    @Test(
        "a guest's guard that falls silent or whose channel closes without a stop is recorded lost and shown lost; one that says stop is not; GuardEvent on a channel is the channel's VM's"
    )
    func guestGuardLost() throws {
        let f = try DaemonFixture()
        let quiet = try HostEnd(path: f.daemon.runtimeDirectory + "/guard/office.sock")
        try quiet.accept(within: 5)
        #expect(
            try quiet.call("io.ukey.Runtime.GuardEvent", ["event": "start", "mounts": ["/"], "gaps": ["memfd-exec"]])
                .error == nil
        )
        #expect(try quiet.call("io.ukey.Runtime.CheckExecBatch", ["items": []]).error == nil)
        var lost = false
        for _ in 0..<100 where !lost {  // silence of 5 s, then the next look: 10 s at most
            lost =
                try f.daemon.call("io.ukey.Audit.Query", ["type": "guard", "limit": 100])["records"]?.arrayValue?
                .contains {
                    $0["subject"]?["event"] == "lost" && $0["subject"]?["vm"] == "office"
                        && $0["subject"]?["via"] == "channel"
                } ?? false
            if !lost { usleep(100_000) }
        }
        #expect(lost, "a silent guest guard was not recorded lost")
        let status = try f.daemon.call("io.ukey.Admin.Status")
        #expect(
            status["guards"]?.arrayValue?.contains { $0["vm"] == "office" && $0["state"] == "lost" } == true,
            "\(status)"
        )
        let starts =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "guard", "limit": 100])["records"]?.arrayValue ?? []
        #expect(
            starts.contains {
                $0["subject"]?["event"] == "start" && $0["subject"]?["vm"] == "office"
                    && $0["subject"]?["gaps"] == "memfd-exec"
            },
            "\(starts)"
        )
        // A guard that says stop before its channel closes is not lost.
        let clean = try HostEnd(path: f.daemon.runtimeDirectory + "/guard/dev.sock")
        try clean.accept(within: 5)
        #expect(try clean.call("io.ukey.Runtime.CheckExecBatch", ["items": []]).error == nil)
        #expect(try clean.call("io.ukey.Runtime.GuardEvent", ["event": "stop", "mounts": ["/"]]).error == nil)
        // The channel of a guard that said nothing but asked, closing: lost (its VM stopped under it).
        let closing = try HostEnd(path: f.daemon.runtimeDirectory + "/guard/mgmt-vm.sock")
        try closing.accept(within: 5)
        #expect(try closing.call("io.ukey.Runtime.CheckExecBatch", ["items": []]).error == nil)
        close(closing.connection)
        closing.connection = -1
        usleep(1_500_000)
        let records =
            try f.daemon.call("io.ukey.Audit.Query", ["type": "guard", "limit": 100])["records"]?.arrayValue ?? []
        #expect(
            !records.contains { $0["subject"]?["event"] == "lost" && $0["subject"]?["vm"] == "dev" },
            "a guard that said stop was recorded lost"
        )
        #expect(
            records.contains { $0["subject"]?["event"] == "lost" && $0["subject"]?["vm"] == "mgmt-vm" },
            "\(records)"
        )
    }
}
