import UkeyVarlink

/// The rules of one varlink connection (varlink.org, "Service": a stream of NUL-terminated
/// calls, each answered in the order it was made), with no I/O: the driver feeds it what happened
/// and does what it returns. Generic over the ticket of a queued call, so tests need no daemon.
///
/// The rules:
/// - Bytes are framed at NULs; a message over `messageLimit`, or one that is not a call, is a
///   protocol error. Where the connection closes on one (a client socket) its error is the last
///   reply and nothing after it is read; where it does not (a guest's channel, where a guard killed
///   mid-write leaves half a message) the error answers that message and framing starts afresh.
/// - Calls start in the order they were read, one at a time, so each sees the effect of every
///   call before it. At most `maxInFlight` are taken and not yet answered on the wire: a client
///   that does not read its replies stops being read from, and costs a bounded amount of memory.
/// - A call that may be queued (a measurement for the next batch) is started without waiting for
///   its answer. A call that may not waits until the last queued one is answered, so it sees their
///   effect and its audit records follow theirs.
/// - Replies leave in call order, whatever order they are ready in; a oneway call takes its turn
///   and writes nothing.
/// - A `more` call the caller may follow streams in its turn; a follower is silent by design, so
///   the idle timeout no longer closes the connection once its stream runs.
/// - Once every read so far is whole calls, all of them taken, the reads are `settled`: when the
///   replies before that point are written, an answer given elsewhere cannot overtake one.
/// - A client that left has no use for the calls it sent and that were not started: they are
///   dropped. A connection whose write failed, or that was closed, takes no more calls.
/// - A stop drains: no new call is taken, and the connection closes once its calls in flight are
///   answered (at once when there are none).
struct ConnectionStateMachine<Ticket> {
    struct Configuration: Sendable {
        var messageLimit: Int
        var maxInFlight: Int
        var protocolErrors: ProtocolErrors
    }

    /// What a protocol error ends: the connection, or only the message that broke it.
    enum ProtocolErrors: Sendable {
        case close
        case answer
    }

    /// A call's (or a refusal's) place in the order of replies.
    typealias CallID = UInt64

    /// What the reader does next.
    enum ReadAction {
        /// Everything read so far is taken: read more.
        case read
        /// The first `n` reads are settled: pass it on once the replies before this are written.
        case settled(UInt64)
        /// As many calls are in flight as allowed: wait for a reply to be written.
        case wait
        /// A whole message: decode it (outside any lock, as it is the costly step), then `take`
        /// the call it holds or refuse it as `malformed`.
        case message([UInt8])
        /// Answer this protocol error in its turn.
        case refuse(CallID, VarlinkError)
        /// Read no more; the replies in flight still leave.
        case stop
    }

    /// How a call goes, as its dispatcher sees it.
    enum Kind: Sendable {
        case queueable
        case unqueueable
        case follow
    }

    /// What to do with a call taken.
    enum BeginAction {
        /// Wait for this queued call's answer first, then say so with `queuedAnswered`.
        case settleQueued(Ticket)
        /// Start it now.
        case start
        /// Stream it in its turn.
        case follow
    }

    /// Replies due on the wire, in call order, and how many calls (oneway ones too) they settle:
    /// write them, then hand this back to `written`.
    struct Due {
        var replies: [VarlinkReply] = []
        var calls = 0
    }

    private enum Phase {
        case open
        /// A stop began: no new call.
        case draining
        /// The connection is over, or its protocol error is the last reply: no new call.
        case closed
    }

    /// A call taken and not yet written; `reply` is set once it is ready (nil writes nothing).
    private struct Entry {
        let oneway: Bool
        var ready = false
        var reply: VarlinkReply?
    }

    let configuration: Configuration
    private var framing: VarlinkFraming
    private var messages: [[UInt8]] = []
    private var nextMessage = 0
    private var protocolError: VarlinkError?
    private var reads: UInt64 = 0
    private var settledReads: UInt64 = 0
    private var phase = Phase.open
    /// Taken calls not yet written, in call order; the first is `firstID`.
    private var entries: [Entry] = []
    /// Where the calls in flight begin in `entries`: written calls are dropped from the front in
    /// batches, not one by one (with 64 in flight, shifting the rest at every reply cost the
    /// protocol's floor a few percent).
    private var head = 0
    private var firstID: CallID = 0
    /// How many of the first entries were handed out to be written.
    private var writing = 0
    private var lastQueued: Ticket?
    private(set) var following = false

    init(_ configuration: Configuration) {
        self.configuration = configuration
        framing = VarlinkFraming(limit: configuration.messageLimit)
    }

    /// Calls taken and not yet answered on the wire.
    var inFlight: Int { entries.count - head }

    // MARK: the reader

    /// Bytes read from the peer.
    mutating func read(_ bytes: some Collection<UInt8>) {
        guard phase != .closed else { return }
        reads += 1
        do throws(VarlinkError) {
            messages += try framing.feed(bytes)
        } catch {
            protocolError = error
            if configuration.protocolErrors == .answer { framing = VarlinkFraming(limit: configuration.messageLimit) }
        }
    }

    /// The reader's next step; `connected` is whether the peer is still there.
    mutating func next(connected: Bool) -> ReadAction {
        guard phase == .open else { return .stop }
        guard nextMessage < messages.count || protocolError != nil else {
            messages.removeAll(keepingCapacity: true)
            nextMessage = 0
            if framing.pendingCount == 0, settledReads < reads {
                settledReads = reads
                return .settled(reads)
            }
            return .read
        }
        guard connected else {
            phase = .closed
            return .stop
        }
        guard inFlight < configuration.maxInFlight else { return .wait }
        if nextMessage == messages.count, let error = protocolError {
            protocolError = nil
            return .refuse(malformed(), error)
        }
        nextMessage += 1
        return .message(messages[nextMessage - 1])
    }

    /// The message given held no call: its place in the order, where its refusal goes.
    mutating func malformed() -> CallID {
        let id = firstID + CallID(inFlight)
        entries.append(Entry(oneway: false))
        if configuration.protocolErrors == .close { phase = .closed }
        return id
    }

    /// The call the message given held, as its dispatcher sees it: its place in the order of
    /// replies, and how it goes.
    mutating func take(_ call: VarlinkCall, as kind: Kind) -> (CallID, BeginAction) {
        let id = firstID + CallID(inFlight)
        entries.append(Entry(oneway: call.oneway))
        return (id, begin(kind))
    }

    /// The last queued call was answered: how the call taken goes now.
    mutating func queuedAnswered(_ kind: Kind) -> BeginAction {
        lastQueued = nil
        return begin(kind)
    }

    /// After the last queued call, unless it is queued too.
    private func begin(_ kind: Kind) -> BeginAction {
        if let lastQueued, kind != .queueable { return .settleQueued(lastQueued) }
        return kind == .follow ? .follow : .start
    }

    /// The call started was queued: later calls that may not be wait for this ticket.
    mutating func queued(_ ticket: Ticket) {
        lastQueued = ticket
    }

    // MARK: the sender

    /// A call's reply is ready (nil for a stream that ended, which has nothing more to write):
    /// the replies now due, in call order.
    mutating func answered(_ id: CallID, _ reply: VarlinkReply?) -> Due {
        guard id >= firstID, Int(id - firstID) < inFlight else { return Due() }
        let index = head + Int(id - firstID)
        guard !entries[index].ready else { return Due() }
        entries[index].ready = true
        entries[index].reply = entries[index].oneway ? nil : reply
        var due = Due()
        while head + writing < entries.count, entries[head + writing].ready {
            if let reply = entries[head + writing].reply {
                due.replies.append(reply)
                entries[head + writing].reply = nil
            }
            writing += 1
            due.calls += 1
        }
        return due
    }

    /// The replies `answered` gave are written (batches in the order they were given); true when
    /// the connection should now close (a stop drains it and nothing is left in flight).
    mutating func written(_ due: Due) -> Bool {
        head += due.calls
        writing -= due.calls
        firstID += CallID(due.calls)
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 {
            entries.removeFirst(head)
            head = 0
        }
        return phase == .draining && inFlight == 0
    }

    /// The stream of a followed call begins (its earlier replies are written).
    mutating func startFollowing() {
        following = true
    }

    // MARK: the connection

    /// The read timeout passed with nothing read: true to close, false for a follower.
    mutating func idleTimedOut() -> Bool {
        guard !following else { return false }
        phase = .closed
        return true
    }

    /// The stop: true to close now, with nothing in flight.
    mutating func drain() -> Bool {
        if phase == .open { phase = .draining }
        return inFlight == 0
    }

    /// The connection is over (a write failed, the peer went, the task ended): no more calls.
    mutating func closed() {
        phase = .closed
    }
}

extension ConnectionStateMachine: Sendable where Ticket: Sendable {}
