import Foundation
import UkeyCore

/// Logged-in users: an unguessable session id for each, valid until it expires or is logged
/// out, and only for the uid that logged in. An id that leaks (a process list, a log, a file
/// another user reads) is of no use to another uid.
struct SessionTable {
    struct Session: Sendable {
        let user: String
        let roles: [String]
        let expires: Date
        /// The peer uid of the connection that logged in (SO_PEERCRED).
        let uid: UInt32
    }

    static let lifetime: TimeInterval = 15 * 60
    static let maxSessions = 10_000
    private var sessions: [String: Session] = [:]

    mutating func open(user: String, roles: [String], uid: UInt32, now: Date) -> (id: String, session: Session) {
        if sessions.count >= Self.maxSessions { sessions = sessions.filter { $0.value.expires > now } }
        let id = Self.newID()
        let session = Session(user: user, roles: roles, expires: now + Self.lifetime, uid: uid)
        sessions[id] = session
        return (id, session)
    }

    /// The session, if it exists, has not expired and is `uid`'s.
    func lookup(_ id: String, uid: UInt32, now: Date) -> Session? {
        guard let session = sessions[id], session.expires > now, session.uid == uid else { return nil }
        return session
    }

    /// Whether `id` is a live session of another uid than `uid` (to say why it is refused).
    func belongsToAnother(_ id: String, uid: UInt32, now: Date) -> Bool {
        guard let session = sessions[id], session.expires > now else { return false }
        return session.uid != uid
    }

    /// Closes `uid`'s session `id`; false when there is none of theirs by that id.
    mutating func close(_ id: String, uid: UInt32) -> Bool {
        guard let session = sessions[id], session.uid == uid else { return false }
        sessions[id] = nil
        return true
    }

    var count: Int { sessions.count }

    /// 32 random bytes in hex, not base64: an id that began with "-" was taken for an option by
    /// every command line it was passed on (`ukeyctl measure ... --session -7qz...`).
    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
