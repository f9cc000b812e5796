import Foundation
import Synchronization
import UkeyAudit

/// Repeated permission denials, one record per peer and method per interval. A peer refused for
/// its role can call again as fast as it likes; recording each refusal let it grow the log at
/// will (191,916 records in 150 s). The first refusal in an interval is recorded as it happens;
/// the rest of that interval's are counted and recorded as one `permission-denied` record with
/// `repeated` and the interval's bounds, when the interval is over (or the daemon stops). Nothing
/// is dropped: the count says how many.
final class DenialAggregator: Sendable {
    static let interval: TimeInterval = 10

    private struct Key: Hashable {
        let uid: UInt32
        let method: String
        /// permission-denied or invalid-call.
        let type: String
    }

    private struct Window {
        let start: Date
        var repeated = 0
        var actor: AuditActor
    }

    private let windows = Mutex<[Key: Window]>([:])

    /// Whether this refusal is recorded now (the first of its interval); otherwise it is counted.
    /// A refusal after its key's interval ended starts a new one, and the ended one's count, if
    /// any, comes back to be recorded first.
    func admit(
        uid: UInt32,
        method: String,
        type: String = "permission-denied",
        actor: AuditActor,
        now: Date = Date()
    ) -> (recordNow: Bool, ended: AuditEntry?) {
        windows.withLock { windows in
            let key = Key(uid: uid, method: method, type: type)
            if var window = windows[key], now.timeIntervalSince(window.start) < Self.interval {
                window.repeated += 1
                window.actor = actor
                windows[key] = window
                return (false, nil)
            }
            let ended = windows[key].flatMap { Self.summary(key, $0, until: now) }
            windows[key] = Window(start: now, actor: actor)
            return (true, ended)
        }
    }

    /// The counts of intervals that are over (all of them with `all`), as records; their windows
    /// are forgotten.
    func flush(now: Date = Date(), all: Bool = false) -> [AuditEntry] {
        windows.withLock { windows in
            var out: [AuditEntry] = []
            for (key, window) in windows where all || now.timeIntervalSince(window.start) >= Self.interval {
                if let entry = Self.summary(key, window, until: min(now, window.start + Self.interval)) {
                    out.append(entry)
                }
                windows[key] = nil
            }
            return out
        }
    }

    private static func summary(_ key: Key, _ window: Window, until end: Date) -> AuditEntry? {
        guard window.repeated > 0 else { return nil }
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return AuditEntry(
            type: key.type,
            actor: window.actor,
            subject: [
                "method": .string(key.method), "repeated": .int(window.repeated),
                "from": .string(format.string(from: window.start)), "until": .string(format.string(from: end)),
            ]
        )
    }
}
