import Foundation
import Synchronization
import UkeyAudit

/// Exec denials, bounded per guard channel. A guest answers to nobody for what it asks its guard
/// to check: one record per denied item let a guest write 112 MB in 10 s, until the log could
/// not be written and every VM start failed. So, per interval:
/// - the same denial (channel, VM, path, digest, decision, reason) is recorded once as it
///   happens; its repeats are counted, and recorded as one `exec` record with `repeated` and the
///   interval's bounds when the interval is over;
/// - a guest's channel records at most `recordsPerChannel` distinct denials; past that its
///   denials are counted, and recorded as one `exec-flood` record (`repeated`, how many distinct
///   paths, the interval) when the interval is over. (A host caller's distinct denials are each
///   recorded: the host's guard runs as root, and its records are durable before its answer.)
/// Nothing goes uncounted: every denial is a record of its own, or counted in the `repeated` of
/// a record that says how many more there were. Counts not yet written are lost with ukeyd to a
/// kill -9, as the denial aggregator's are; what was recorded is durable as always.
final class ExecDenialAggregator: Sendable {
    static let interval: TimeInterval = 10
    static let recordsPerChannel = 100
    /// Distinct paths remembered per flooded channel (only to count them; past it, "at least").
    static let maxFloodPaths = 10_000
    static let floodRecord = "exec-flood"

    /// Where denials come from: a guest's guard channel (bounded), or a host caller.
    enum Channel: Hashable, Sendable {
        case guest(String)
        case host(uid: UInt32)
    }

    private struct Denial: Hashable {
        let channel: Channel
        let subject: [String: AuditValue]
    }

    private struct Repeats {
        let start: Date
        var repeated = 0
        var actor: AuditActor
    }

    private struct Budget {
        let start: Date
        var recorded = 0
        var flooded = 0
        var floodPaths: Set<String> = []
        var actor: AuditActor
        var vm: String?
    }

    private struct State {
        var repeats: [Denial: Repeats] = [:]
        var budgets: [Channel: Budget] = [:]
    }

    private let state = Mutex(State())

    /// What to record now for this denial (`entry`, an `exec` record) on `channel`: the entry
    /// itself, nothing (it is counted), and before either the counts of intervals that ended.
    func admit(_ entry: AuditEntry, channel: Channel, now: Date = Date()) -> [AuditEntry] {
        state.withLock { state in
            var out: [AuditEntry] = []
            let denial = Denial(channel: channel, subject: entry.subject)
            if var repeats = state.repeats[denial] {
                if now.timeIntervalSince(repeats.start) < Self.interval {
                    repeats.repeated += 1
                    repeats.actor = entry.actor ?? repeats.actor
                    state.repeats[denial] = repeats
                    return []
                }
                if let summary = Self.summary(denial, repeats, until: now) { out.append(summary) }
                state.repeats[denial] = nil
            }
            guard case .guest = channel else {
                state.repeats[denial] = Repeats(start: now, actor: entry.actor ?? .daemon)
                out.append(entry)
                return out
            }
            var budget = state.budgets[channel] ?? Budget(start: now, actor: entry.actor ?? .daemon)
            if now.timeIntervalSince(budget.start) >= Self.interval {
                if let summary = Self.flood(budget, until: now) { out.append(summary) }
                budget = Budget(start: now, actor: entry.actor ?? .daemon)
            }
            if budget.recorded < Self.recordsPerChannel {
                budget.recorded += 1
                state.repeats[denial] = Repeats(start: now, actor: entry.actor ?? .daemon)
                out.append(entry)
            } else {
                budget.flooded += 1
                budget.actor = entry.actor ?? budget.actor
                if budget.vm == nil, case .string(let vm)? = entry.subject["vm"] { budget.vm = vm }
                if budget.floodPaths.count < Self.maxFloodPaths, case .string(let path)? = entry.subject["path"] {
                    budget.floodPaths.insert(path)
                }
            }
            state.budgets[channel] = budget
            return out
        }
    }

    /// The counts of intervals that are over (all of them with `all`), as records; those
    /// intervals are forgotten.
    func flush(now: Date = Date(), all: Bool = false) -> [AuditEntry] {
        state.withLock { state in
            var out: [AuditEntry] = []
            for (denial, repeats) in state.repeats where all || now.timeIntervalSince(repeats.start) >= Self.interval {
                if let summary = Self.summary(denial, repeats, until: min(now, repeats.start + Self.interval)) {
                    out.append(summary)
                }
                state.repeats[denial] = nil
            }
            for (channel, budget) in state.budgets where all || now.timeIntervalSince(budget.start) >= Self.interval {
                if let summary = Self.flood(budget, until: min(now, budget.start + Self.interval)) {
                    out.append(summary)
                }
                state.budgets[channel] = nil
            }
            return out
        }
    }

    private static func summary(_ denial: Denial, _ repeats: Repeats, until end: Date) -> AuditEntry? {
        guard repeats.repeated > 0 else { return nil }
        var subject = denial.subject
        subject["repeated"] = .int(repeats.repeated)
        subject["from"] = .string(Self.time(repeats.start))
        subject["until"] = .string(Self.time(end))
        return AuditEntry(type: "exec", actor: repeats.actor, subject: subject)
    }

    private static func flood(_ budget: Budget, until end: Date) -> AuditEntry? {
        guard budget.flooded > 0 else { return nil }
        var subject: [String: AuditValue] = [
            "repeated": .int(budget.flooded), "paths": .int(budget.floodPaths.count),
            "from": .string(Self.time(budget.start)), "until": .string(Self.time(end)),
        ]
        if budget.floodPaths.count >= maxFloodPaths { subject["pathsAtLeast"] = .bool(true) }
        if let vm = budget.vm { subject["vm"] = .string(vm) }
        return AuditEntry(type: floodRecord, actor: budget.actor, subject: subject)
    }

    private static func time(_ date: Date) -> String {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return format.string(from: date)
    }
}
