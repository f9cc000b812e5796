import Foundation
import Glibc

/// The exec guard: answers every exec the kernel holds on the guarded mounts, from a cache of
/// decisions keyed by the file's identity and the decision state's generation, asking the
/// decision source about files it has not seen (one batch for all the execs pending at once).
///
/// It never holds the kernel without bound: each batch has a deadline, after which the execs are
/// answered by the last `onTimeout` the source gave (deny before it gave any). Its own executable
/// and the files it has mapped are always allowed, so it cannot lock itself out.
public final class ExecGuard {
    public struct Settings: Sendable {
        public var vm: String
        /// Seconds to wait for a decision before answering by `onTimeout`.
        public var deadline: TimeInterval = 2
        /// Entries kept in the cache; past it the cache starts again empty.
        public var cacheLimit = 65_536

        public init(vm: String) {
            self.vm = vm
        }
    }

    let group: FanotifyGroup
    let source: DecisionSource
    let settings: Settings
    /// Decisions by file identity, valid for `generation` only.
    private var cache: [FileIdentity: Bool] = [:]
    public private(set) var generation: UInt64?
    private var onTimeout = false
    /// The guard's own executable and the libraries it has mapped.
    private let own: Set<FileKey>
    /// What the guard did, for its log and the tests.
    public private(set) var counters = Counters()

    public struct Counters: Sendable {
        public var allowed = 0
        public var denied = 0
        public var hashed = 0
        public var timedOut = 0
    }

    public init(group: FanotifyGroup, source: DecisionSource, settings: Settings) {
        self.group = group
        self.source = source
        self.settings = settings
        own = Self.mappedFiles()
    }

    /// Serves held execs until `keepGoing` says stop; between events it asks for the generation
    /// once a second, so a policy reload reaches the cache within that.
    public func run(log: (String) -> Void, keepGoing: () -> Bool) throws {
        var lastPoll = Date.distantPast
        while keepGoing() {
            let events = try group.events(timeout: 1000)
            if !events.isEmpty { serve(events, log: log) }
            if Date().timeIntervalSince(lastPoll) >= 1 {
                refreshGeneration(log: log)
                lastPoll = Date()
            }
        }
    }

    func serve(_ events: [FanotifyGroup.Event], log: (String) -> Void) {
        var pending: [(event: FanotifyGroup.Event, identity: FileIdentity, path: String, sha256: [UInt8])] = []
        for event in events {
            guard let identity = FileIdentity(descriptor: event.fd) else {
                answer(event, allow: false)  // not a regular file: nothing a whitelist can vouch for
                continue
            }
            if own.contains(identity.file) {
                answer(event, allow: true)
                continue
            }
            if let cached = cache[identity] {
                answer(event, allow: cached)
                continue
            }
            guard let sha256 = DescriptorHasher.sha256(event.fd) else {
                answer(event, allow: false)
                continue
            }
            counters.hashed += 1
            pending.append((event, identity, Self.path(of: event.fd), sha256))
        }
        guard !pending.isEmpty else { return }
        do {
            let decisions = try source.decide(vm: settings.vm, files: pending.map { ($0.path, $0.sha256) }, deadline: settings.deadline)
            adopt(generation: decisions.generation, onTimeout: decisions.onTimeout, log: log)
            if cache.count + pending.count > settings.cacheLimit { cache = [:] }
            for (item, allowed) in zip(pending, decisions.allowed) {
                cache[item.identity] = allowed
                answer(item.event, allow: allowed)
            }
        } catch {
            counters.timedOut += pending.count
            log("no decision in time (\(error)); answering \(pending.count) exec(s) by on-timeout: \(onTimeout ? "allow" : "deny")")
            for item in pending { answer(item.event, allow: onTimeout) }
        }
    }

    /// Asks with an empty batch: the generation alone.
    func refreshGeneration(log: (String) -> Void) {
        guard let decisions = try? source.decide(vm: settings.vm, files: [], deadline: settings.deadline) else { return }
        adopt(generation: decisions.generation, onTimeout: decisions.onTimeout, log: log)
    }

    private func adopt(generation new: UInt64, onTimeout: Bool, log: (String) -> Void) {
        self.onTimeout = onTimeout
        if generation != new {
            if generation != nil { log("decision state moved to generation \(new): cache of \(cache.count) dropped") }
            cache = [:]
            generation = new
        }
    }

    private func answer(_ event: FanotifyGroup.Event, allow: Bool) {
        if allow { counters.allowed += 1 } else { counters.denied += 1 }
        group.answer(event, allow: allow)
    }

    /// The path the kernel gives for the event's descriptor.
    static func path(of descriptor: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(descriptor)", &buffer, buffer.count - 1)
        guard count > 0 else { return "/" }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The files mapped into this process (its executable, its libraries), by device and inode.
    static func mappedFiles() -> Set<FileKey> {
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return [] }
        var files = Set<FileKey>()
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            if let identity = FileIdentity(path: String(line[slash...])) { files.insert(identity.file) }
        }
        if let exe = FileIdentity(path: "/proc/self/exe") { files.insert(exe.file) }
        return files
    }
}
