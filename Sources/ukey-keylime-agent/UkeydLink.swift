import Synchronization
import UkeyAPI
import UkeyClient

/// The agent's one connection to ukeyd, made when first needed and made again once after it
/// breaks (ukeyd restarted). Calls take turns: the TPM answers one command at a time anyway.
final class UkeydLink: Sendable {
    let socket: String
    private let connection = Mutex<VarlinkConnection?>(nil)

    init(socket: String) {
        self.socket = socket
    }

    func call<M: APIMethod>(_ method: M.Type, _ request: M.Request) throws -> M.Reply {
        try connection.withLock { held in
            if let open = held {
                do {
                    return try open.call(method, request)
                } catch is VarlinkConnection.Failure {
                    held = nil  // ukeyd went away: one more try on a new connection
                }
            }
            let fresh = try VarlinkConnection(path: socket)
            held = fresh
            return try fresh.call(method, request)
        }
    }
}
