import Synchronization

/// Logins waiting per peer process. A PIN check costs a slow key derivation, and checks run one
/// at a time, so a peer that queues logins by the hundred would make every other user wait
/// behind them; each peer may have only `perPeer` logins pending, and the rest are refused at once
/// with `io.ukey.Auth.Busy`.
final class LoginLimiter: Sendable {
    static let perPeer = 2

    private struct Peer: Hashable {
        let uid: UInt32
        let pid: Int32
    }

    private let pending = Mutex<[Peer: Int]>([:])

    /// Takes a place for `caller`'s login; false when it already has `perPeer` pending.
    func enter(_ caller: Caller) -> Bool {
        pending.withLock { pending in
            let peer = Peer(uid: caller.uid, pid: caller.pid)
            let count = pending[peer, default: 0]
            guard count < Self.perPeer else { return false }
            pending[peer] = count + 1
            return true
        }
    }

    func leave(_ caller: Caller) {
        pending.withLock { pending in
            let peer = Peer(uid: caller.uid, pid: caller.pid)
            let count = pending[peer, default: 1] - 1
            pending[peer] = count > 0 ? count : nil
        }
    }
}
