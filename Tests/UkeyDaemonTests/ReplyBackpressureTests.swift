import Foundation
import Testing
import UkeyClient
import UkeyTesting
import UkeyVarlink

/// The review's finding: one unprivileged connection wrote 40 MB of pipelined
/// `Token.Random{bytes:1024}` calls and read nothing; ukeyd's RSS rose from 47 MB to 1.09 GB.
/// The floods here are of `GetInfo`, which anyone may call and ukeyd answers fastest (a debug
/// build makes random bytes slowly): before the fix, one such client for 20 s took ukeyd's RSS
/// from 33 MB to 940 MB.
@Suite("ukeyd: clients that never read their replies")
struct ReplyBackpressureTests {
    /// Each flooding client offers this many calls (about 40 MB from ten of them): without a
    /// bound on the replies in flight, ukeyd would hold every reply.
    static let callsPerClient = 100_000
    static let chunkCalls = 100
    static let stallSeconds = 3.0
    /// What a client can have written when ukeyd stops reading it: the socket's buffers and
    /// NIO's inbound buffers, some tens of thousands of 40-byte calls, far fewer than it offers.
    static let maxAcceptedPerClient = 60_000
    static let clients = 10
    /// What ukeyd may grow by while the floods sit unread: 64 replies per connection and NIO's
    /// buffers are well under a megabyte each; an unbounded daemon holds ~140 MB per client.
    static let allowedGrowthKB = 64 * 1024

    /// GetInfo is answered by the connection's task; an empty CheckExecBatch on the event loop,
    /// by the immediate lane, which must stop answering once the client stops reading.
    static let floods: [VarlinkCall] = [
        VarlinkCall(method: "org.varlink.service.GetInfo"),
        VarlinkCall(method: "io.ukey.Runtime.CheckExecBatch", parameters: ["items": [], "vm": "vmm"]),
    ]

    @Test(
        "ten clients flood pipelined calls and never read: ukeyd's RSS stays bounded, others are served, and it frees what the clients held when they go",
        arguments: floods
    )
    func floodersAreBounded(flood: VarlinkCall) throws {
        let f = try DaemonFixture()
        let daemon = f.daemon
        // The flood's call is answered, as it will be when nobody reads.
        #expect(try daemon.call(flood.method, flood.parameters)["results"] != nil || flood.method.hasSuffix("GetInfo"))
        let baseline = DaemonRobustnessTests.rss(daemon.pid)
        #expect(baseline > 0, "VmRSS must be read from /proc")
        let call = VarlinkFraming.frame(VarlinkCodec.encode(flood))
        let chunk = [UInt8](repeating: 0, count: 0).reserved(call.count * Self.chunkCalls) { buffer in
            for _ in 0..<Self.chunkCalls { buffer += call }
        }
        let flooders = try (0..<Self.clients).map { _ in try RawClient(path: daemon.socketPath) }
        // Each client writes for as long as ukeyd takes its bytes. A client is stopped when none
        // of its writes made progress for `stallSeconds`; the floods end when every client is
        // stopped, has offered all its calls, or the deadline passes.
        var offered = [Int](repeating: 0, count: Self.clients)
        var lastProgress = [Date](repeating: Date(), count: Self.clients)
        let deadline = Date() + 20
        func stopped(_ index: Int) -> Bool {
            offered[index] >= Self.callsPerClient || Date().timeIntervalSince(lastProgress[index]) > Self.stallSeconds
        }
        while Date() < deadline, !(0..<Self.clients).allSatisfy(stopped) {
            for (index, client) in flooders.enumerated() where !stopped(index) {
                if client.pump(chunk, within: 0.05) > 0 {
                    offered[index] = client.written / call.count
                    lastProgress[index] = Date()
                }
            }
        }
        #expect(
            (0..<Self.clients).allSatisfy { Date().timeIntervalSince(lastProgress[$0]) > Self.stallSeconds },
            "ukeyd kept reading the floods: \(offered)"
        )
        // While the floods sit unread, others are served.
        #expect(try daemon.call("org.varlink.service.GetInfo")["product"] == "ukeyd")
        #expect(try daemon.call("io.ukey.Admin.Status")["initialized"] == true)
        #expect(try daemon.call("io.ukey.Token.Random", ["bytes": 16])["data"] != nil)
        let peak = DaemonRobustnessTests.rss(daemon.pid)
        #expect(
            peak - baseline < Self.allowedGrowthKB,
            "RSS grew from \(baseline) kB to \(peak) kB with \(offered.reduce(0, +)) calls offered"
        )
        // Each flooder was stopped long before it could send all it wanted.
        #expect(offered.allSatisfy { $0 < Self.maxAcceptedPerClient }, "ukeyd took too much: \(offered)")
        // The clients go; ukeyd lets go of what they held and keeps serving.
        for client in flooders { client.close() }
        usleep(500_000)
        #expect(try daemon.call("org.varlink.service.GetInfo")["product"] == "ukeyd")
        let after = DaemonRobustnessTests.rss(daemon.pid)
        print(
            "ukeyd RSS: \(baseline) kB before, \(peak) kB with \(Self.clients) flooders (\(offered.reduce(0, +)) calls offered), \(after) kB after they left"
        )
        #expect(
            after - baseline < Self.allowedGrowthKB,
            "RSS \(after) kB after the clients left (baseline \(baseline) kB)"
        )
        daemon.stop()
        #expect(
            daemon.exitStatus == 0,
            "ukeyd stopped with status \(daemon.exitStatus ?? -1); the end of its log:\n\(daemon.log().suffix(60000))"
        )
    }
}

extension Array where Element == UInt8 {
    func reserved(_ capacity: Int, _ fill: (inout [UInt8]) -> Void) -> [UInt8] {
        var copy = self
        copy.reserveCapacity(capacity)
        fill(&copy)
        return copy
    }
}

/// A Unix-socket client that writes with a deadline and never reads.
final class RawClient {
    private var fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let status = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard fd >= 0, status == 0 else { throw TestDaemonError("cannot connect to \(path)") }
    }

    /// Bytes written so far.
    private(set) var written = 0
    private var pending: ArraySlice<UInt8> = []

    /// Writes what is left of the last `chunk` (a new one once it is all out), for at most about
    /// `seconds`; returns the bytes written. A write cut short resumes where it stopped, so the
    /// calls on the wire stay whole.
    func pump(_ chunk: [UInt8], within seconds: Double) -> Int {
        var interval = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &interval, socklen_t(MemoryLayout<timeval>.size))
        if pending.isEmpty { pending = chunk[...] }
        let n = pending.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n > 0 else { return 0 }
        pending = pending.dropFirst(n)
        written += n
        return n
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}
