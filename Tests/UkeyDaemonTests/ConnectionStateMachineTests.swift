import Testing
import UkeyVarlink

@testable import UkeyDaemon

/// The connection's rules, without a socket: each test feeds the machine what a connection would
/// and asserts every action it returns, in order.
@Suite("ukeyd: a connection's state machine")
struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine<Int>

    static let getInfo = VarlinkCall(method: "org.varlink.service.GetInfo")
    static let measure = VarlinkCall(method: "io.ukey.Boot.Measure")
    static let status = VarlinkCall(method: "io.ukey.Admin.Status")

    static func machine(
        limit: Int = 1 << 20,
        inFlight: Int = 64,
        errors: Machine.ProtocolErrors = .close
    ) -> Machine {
        Machine(.init(messageLimit: limit, maxInFlight: inFlight, protocolErrors: errors))
    }

    static func bytes(_ calls: VarlinkCall...) -> [UInt8] {
        calls.flatMap { VarlinkFraming.frame(VarlinkCodec.encode($0)) }
    }

    static func reply(_ name: String) -> VarlinkReply {
        VarlinkReply(parameters: ["name": .string(name)])
    }

    /// How the tests' dispatcher sees a call: measurements are queued, `more` calls followed.
    static func kind(_ call: VarlinkCall) -> Machine.Kind {
        call.more ? .follow : call.methodName == "Measure" ? .queueable : .unqueueable
    }

    /// The reader's steps until it must read, wait or stop, written as words. A queued call's
    /// ticket is 10 + its id, answered as soon as a later call waits for it.
    static func steps(_ machine: inout Machine, connected: Bool = true) -> [String] {
        var trace: [String] = []
        while true {
            switch machine.next(connected: connected) {
            case .read: return trace + ["read"]
            case .wait: return trace + ["wait"]
            case .stop: return trace + ["stop"]
            case .settled(let reads): trace.append("settled \(reads)")
            case .refuse(let id, let error): trace.append("refuse \(id) \(error.name)")
            case .message(let message):
                guard let call = try? VarlinkCodec.decodeCall(message) else {
                    trace.append("refuse \(machine.malformed()) malformed")
                    continue
                }
                var (id, action) = machine.take(call, as: kind(call))
                while case .settleQueued(let ticket) = action {
                    trace.append("settle \(ticket)")
                    action = machine.queuedAnswered(kind(call))
                }
                let name = "\(id) \(call.methodName)\(call.oneway ? " oneway" : "")"
                switch action {
                case .follow: trace.append("follow \(name)")
                case .start where kind(call) == .queueable:
                    machine.queued(10 + Int(id))
                    trace.append("queue \(name)")
                default: trace.append("call \(name)")
                }
            }
        }
    }

    /// Takes the next call alone, as `steps` does: its id.
    static func take(_ machine: inout Machine) -> UInt64? {
        guard case .message(let message) = machine.next(connected: true),
            let call = try? VarlinkCodec.decodeCall(message)
        else { return nil }
        return machine.take(call, as: kind(call)).0
    }

    /// Answers and writes, as the sender does: the replies written.
    static func answer(_ machine: inout Machine, _ id: UInt64, _ reply: VarlinkReply?) -> [VarlinkReply] {
        let due = machine.answered(id, reply)
        _ = machine.written(due)
        return due.replies
    }

    @Test("pipelined calls in one read are taken in order, then the read is settled")
    func pipelined() {
        var machine = Self.machine()
        machine.read(Self.bytes(Self.getInfo, Self.status, Self.getInfo))
        #expect(
            Self.steps(&machine) == ["call 0 GetInfo", "call 1 Status", "call 2 GetInfo", "settled 1", "read"]
        )
        #expect(machine.inFlight == 3)
    }

    @Test("replies leave in call order whatever order they are ready in")
    func inOrder() {
        var machine = Self.machine()
        machine.read(Self.bytes(Self.getInfo, Self.status, Self.getInfo, Self.status))
        _ = Self.steps(&machine)
        #expect(Self.answer(&machine, 2, Self.reply("c")).isEmpty, "b and a are not written yet")
        #expect(Self.answer(&machine, 1, Self.reply("b")).isEmpty)
        let due = machine.answered(0, Self.reply("a"))
        #expect(due.replies == [Self.reply("a"), Self.reply("b"), Self.reply("c")] && due.calls == 3)
        // Due batches are written in the order they are given: d after a, b and c.
        let next = machine.answered(3, Self.reply("d"))
        #expect(next.replies == [Self.reply("d")] && next.calls == 1)
        #expect(machine.written(due) == false)
        #expect(machine.inFlight == 1)
        #expect(machine.answered(3, Self.reply("d again")).replies.isEmpty, "a call is answered once")
        #expect(machine.written(next) == false)
        #expect(machine.inFlight == 0)
    }

    @Test("a oneway call takes its turn and writes nothing")
    func oneway() {
        var machine = Self.machine()
        var quiet = Self.status
        quiet.oneway = true
        machine.read(Self.bytes(Self.getInfo, quiet, Self.getInfo))
        #expect(
            Self.steps(&machine) == ["call 0 GetInfo", "call 1 Status oneway", "call 2 GetInfo", "settled 1", "read"]
        )
        #expect(Self.answer(&machine, 1, Self.reply("b")).isEmpty)
        #expect(Self.answer(&machine, 2, Self.reply("c")).isEmpty)
        let due = machine.answered(0, Self.reply("a"))
        #expect(due.replies == [Self.reply("a"), Self.reply("c")] && due.calls == 3)
        _ = machine.written(due)
        #expect(machine.inFlight == 0)
    }

    @Test(
        "queued calls start without waiting; a call that may not be queued (or follows) waits for the last queued one's answer"
    )
    func queued() {
        var machine = Self.machine()
        let query = VarlinkCall(method: "io.ukey.Audit.Query", more: true)
        machine.read(Self.bytes(Self.measure, Self.measure, Self.status, Self.measure, query, Self.getInfo))
        #expect(
            Self.steps(&machine) == [
                "queue 0 Measure", "queue 1 Measure", "settle 11", "call 2 Status", "queue 3 Measure", "settle 13",
                "follow 4 Query", "call 5 GetInfo", "settled 1", "read",
            ]
        )
    }

    @Test("a follower is not closed at the idle timeout once its stream runs; anyone else is, and reads no more")
    func idleAndFollow() {
        var follower = Self.machine()
        follower.read(Self.bytes(VarlinkCall(method: "io.ukey.Audit.Query", more: true), Self.getInfo))
        #expect(Self.steps(&follower) == ["follow 0 Query", "call 1 GetInfo", "settled 1", "read"])
        follower.startFollowing()
        #expect(follower.idleTimedOut() == false)
        #expect(Self.answer(&follower, 1, Self.reply("b")).isEmpty, "GetInfo waits for the stream to end")
        #expect(Self.answer(&follower, 0, nil) == [Self.reply("b")])

        var idle = Self.machine()
        idle.read(Self.bytes(Self.getInfo))
        _ = Self.steps(&idle)
        #expect(idle.idleTimedOut() == true)
        idle.read(Self.bytes(Self.getInfo))
        #expect(Self.steps(&idle) == ["stop"])
    }

    @Test("at most maxInFlight calls are taken; a written reply frees a place")
    func backpressure() {
        var machine = Self.machine(inFlight: 2)
        machine.read(Self.bytes(Self.getInfo, Self.status, Self.getInfo))
        #expect(Self.steps(&machine) == ["call 0 GetInfo", "call 1 Status", "wait"])
        let due = machine.answered(0, Self.reply("a"))
        #expect(Self.steps(&machine) == ["wait"], "a reply being written still holds its place")
        _ = machine.written(due)
        #expect(Self.steps(&machine) == ["call 2 GetInfo", "settled 1", "read"])
    }

    @Test("a client that leaves has its calls not yet started dropped; the started ones are still answered")
    func leftMidFlight() {
        var machine = Self.machine()
        machine.read(Self.bytes(Self.getInfo, Self.status))
        #expect(Self.take(&machine) == 0)
        #expect(Self.steps(&machine, connected: false) == ["stop"])
        #expect(Self.steps(&machine) == ["stop"], "gone is gone")
        #expect(Self.answer(&machine, 0, Self.reply("a")) == [Self.reply("a")])
    }

    @Test("a message over the limit is refused after the calls before it, and the connection reads no more")
    func limitCloses() {
        var machine = Self.machine(limit: 64)
        machine.read(Self.bytes(Self.getInfo))
        machine.read([UInt8](repeating: 0x20, count: 65))
        #expect(Self.steps(&machine) == ["call 0 GetInfo", "refuse 1 io.ukey.ProtocolError", "stop"])
        machine.read(Self.bytes(Self.getInfo))
        #expect(Self.steps(&machine) == ["stop"])
        #expect(Self.answer(&machine, 0, Self.reply("a")) == [Self.reply("a")])
        #expect(Self.answer(&machine, 1, .failure(.protocolError("x"))) == [.failure(.protocolError("x"))])
    }

    @Test("garbage is refused and ends the connection; the calls after it in the same read are not taken")
    func garbageCloses() {
        var machine = Self.machine()
        machine.read(Array("not json".utf8) + [0] + Self.bytes(Self.getInfo))
        #expect(Self.steps(&machine) == ["refuse 0 malformed", "stop"])
    }

    @Test(
        "where protocol errors are answered, the connection goes on: after garbage, and after half a message too long"
    )
    func errorsAnswered() {
        var machine = Self.machine(limit: 64, inFlight: 1, errors: .answer)
        machine.read(Array("not json".utf8) + [0] + Self.bytes(Self.getInfo))
        #expect(Self.steps(&machine) == ["refuse 0 malformed", "wait"], "one call at a time")
        #expect(Self.answer(&machine, 0, .failure(.protocolError("x"))).count == 1)
        #expect(Self.steps(&machine) == ["call 1 GetInfo", "settled 1", "read"])
        #expect(Self.answer(&machine, 1, Self.reply("b")).count == 1)
        machine.read([UInt8](repeating: 0x20, count: 65))
        #expect(Self.steps(&machine) == ["refuse 2 io.ukey.ProtocolError", "settled 2", "read"])
        #expect(Self.answer(&machine, 2, .failure(.protocolError("x"))).count == 1)
        machine.read(Self.bytes(Self.getInfo))
        #expect(Self.steps(&machine) == ["call 3 GetInfo", "settled 3", "read"])
    }

    @Test("a call drip-fed one byte at a time is taken at its NUL; reads holding part of a message are not settled")
    func dripFed() {
        var machine = Self.machine()
        let bytes = Self.bytes(Self.getInfo)
        for byte in bytes.dropLast() {
            machine.read([byte])
            #expect(Self.steps(&machine) == ["read"])
        }
        machine.read([0])
        #expect(Self.steps(&machine) == ["call 0 GetInfo", "settled \(bytes.count)", "read"])
    }

    @Test("two calls and half of a third in one read: both are taken, nothing is settled until the third is whole")
    func coalesced() {
        var machine = Self.machine()
        let third = Self.bytes(Self.status)
        machine.read(Self.bytes(Self.getInfo, Self.getInfo) + third.prefix(5))
        #expect(Self.steps(&machine) == ["call 0 GetInfo", "call 1 GetInfo", "read"])
        machine.read(third.dropFirst(5))
        #expect(Self.steps(&machine) == ["call 2 Status", "settled 2", "read"])
    }

    @Test(
        "a stop drains: an idle connection closes at once; a busy one takes no new call and closes after its last reply"
    )
    func drain() {
        var idle = Self.machine()
        #expect(idle.drain() == true)

        var busy = Self.machine()
        busy.read(Self.bytes(Self.getInfo, Self.status))
        #expect(Self.take(&busy) == 0)
        #expect(busy.drain() == false)
        #expect(Self.steps(&busy) == ["stop"], "Status is not started")
        let due = busy.answered(0, Self.reply("a"))
        #expect(due.replies == [Self.reply("a")])
        #expect(busy.written(due) == true)
    }

    @Test("a failed write closes the connection: no more calls are taken")
    func writeFailed() {
        var machine = Self.machine()
        machine.read(Self.bytes(Self.getInfo, Self.status))
        #expect(Self.take(&machine) == 0)
        machine.closed()
        #expect(Self.steps(&machine) == ["stop"])
    }
}
