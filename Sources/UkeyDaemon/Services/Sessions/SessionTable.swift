import Foundation
import UkeyCore

/// Logged-in users: an unguessable session id for each, valid until it expires or is logged out.
struct SessionTable {
    struct Session: Sendable {
        let user: String
        let roles: [String]
        let expires: Date
    }

    static let lifetime: TimeInterval = 15 * 60
    static let maxSessions = 10_000
    private var sessions: [String: Session] = [:]

    mutating func open(user: String, roles: [String], now: Date) -> (id: String, session: Session) {
        if sessions.count >= Self.maxSessions { sessions = sessions.filter { $0.value.expires > now } }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        // Hex, not base64: an id that began with "-" was taken for an option by every command line
        // it was passed on (`ukeyctl measure ... --session -7qz...`).
        let id = Hex.encode(bytes)
        let session = Session(user: user, roles: roles, expires: now + Self.lifetime)
        sessions[id] = session
        return (id, session)
    }

    func lookup(_ id: String, now: Date) -> Session? {
        guard let session = sessions[id], session.expires > now else { return nil }
        return session
    }

    mutating func close(_ id: String) -> Bool {
        sessions.removeValue(forKey: id) != nil
    }

    var count: Int { sessions.count }
}
