import Foundation
import Glibc
import Synchronization

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
        /// Whether to fetch and use the VM's allow set, where the source has one.
        public var holdsAllowSet = true

        public init(vm: String) {
            self.vm = vm
        }
    }

    let group: FanotifyGroup
    let source: DecisionSource
    let settings: Settings
    let hasher = DescriptorHasher()
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
        /// Allowed from the VM's allow set, without a call.
        public var allowedLocally = 0
    }

    /// The VM's allow set, fetched in the background (`AllowSetSource`).
    final class AllowSetSlot: Sendable {
        let set = Mutex<LocalAllowSet?>(nil)
        /// The generation last fetched for (with or without a set), and whether a fetch runs.
        let state = Mutex<(fetched: UInt64?, running: Bool)>((nil, false))
    }

    private let allowSet = AllowSetSlot()

    /// The allow set, when it is the current generation's.
    public var currentAllowSet: LocalAllowSet? {
        guard let generation, let set = allowSet.set.withLock({ $0 }), set.generation == generation else { return nil }
        return set
    }

    public init(group: FanotifyGroup, source: DecisionSource, settings: Settings) {
        self.group = group
        self.source = source
        self.settings = settings
        own = Self.mappedFiles()
    }

    /// Serves held execs until `stop` (a signalfd for SIGTERM and SIGINT) becomes readable;
    /// between events it asks for the generation once a second, so a policy reload reaches the
    /// cache within that. A warm exec costs one wake-up and five system calls (poll, read, fstat,
    /// write, close); the clock is the vDSO's coarse one, no call into the kernel.
    public func run(log: (String) -> Void, stop: Int32) throws {
        var events: [FanotifyGroup.Event] = []
        events.reserveCapacity(64)
        var nextRefresh = Self.monotonicMilliseconds()
        while true {
            let now = Self.monotonicMilliseconds()
            if now >= nextRefresh {
                refreshGeneration(log: log)
                nextRefresh = Self.monotonicMilliseconds() + 1000
            }
            let timeout = Int32(clamping: max(nextRefresh - Self.monotonicMilliseconds(), 0))
            switch try group.wait(timeout: timeout, stop: stop, into: &events) {
            case .events: serve(events, log: log)
            case .stop: return
            case .timeout: continue
            }
        }
    }

    /// CLOCK_MONOTONIC_COARSE, in milliseconds: a tick or so of error is nothing against the
    /// one-second refresh, and it is read from the vDSO without a system call.
    static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// A held exec the cache could not answer.
    private struct Pending {
        let event: FanotifyGroup.Event
        let identity: FileIdentity
        let path: String
        let sha256: [UInt8]
    }

    func serve(_ events: [FanotifyGroup.Event], log: (String) -> Void) {
        var pending: [Pending] = []
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
            guard let sha256 = hasher.sha256(event.fd) else {
                answer(event, allow: false)
                continue
            }
            counters.hashed += 1
            pending.append(Pending(event: event, identity: identity, path: Self.path(of: event.fd), sha256: sha256))
        }
        guard !pending.isEmpty else { return }
        // A file in the VM's allow set runs without a call; only the rest are asked about (and a
        // refusal is always ukeyd's, so it is recorded).
        var undecided: [Pending] = []
        let set = currentAllowSet
        for item in pending {
            if let set, set.allows(path: item.path, sha256: item.sha256) {
                counters.allowedLocally += 1
                store(item, allow: true)
            } else {
                undecided.append(item)
            }
        }
        guard !undecided.isEmpty else { return }
        do {
            let decisions = try source.decide(vm: settings.vm, files: undecided.map { ($0.path, $0.sha256) }, deadline: settings.deadline)
            adopt(generation: decisions.generation, onTimeout: decisions.onTimeout, log: log)
            for (item, allowed) in zip(undecided, decisions.allowed) { store(item, allow: allowed) }
        } catch {
            counters.timedOut += undecided.count
            log("no decision in time (\(error)); answering \(undecided.count) exec(s) by on-timeout: \(onTimeout ? "allow" : "deny")")
            for item in undecided { answer(item.event, allow: onTimeout) }
        }
    }

    /// Fetches the allow set of the current generation in the background, unless it was
    /// fetched for this generation already or a fetch runs; a failed fetch is tried again at the
    /// next refresh.
    private func requestAllowSet() {
        guard settings.holdsAllowSet, let fetcher = (source as? AllowSetSource)?.allowSetFetcher, let generation else { return }
        let start = allowSet.state.withLock { state -> Bool in
            guard state.fetched != generation, !state.running else { return false }
            state.running = true
            return true
        }
        guard start else { return }
        let slot = allowSet, vm = settings.vm, deadline = max(settings.deadline, 10)
        // Its own line on stderr, as the command's log writes: this thread cannot use the loop's.
        let log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("ukey-guard: \($0)\n".utf8)) }
        Thread.detachNewThread {
            var fetched: UInt64?
            do {
                let set = try fetcher(vm, deadline)
                slot.set.withLock { $0 = set }
                fetched = set?.generation ?? generation
                if let set { log("allow set of generation \(set.generation): \(set.count) entries") }
            } catch {
                log("could not fetch the allow set (\(error)); asking about every file until it comes")
            }
            slot.state.withLock { $0 = (fetched, false) }
        }
    }

    private func store(_ item: Pending, allow: Bool) {
        if cache.count >= settings.cacheLimit { cache = [:] }
        cache[item.identity] = allow
        answer(item.event, allow: allow)
    }

    /// Asks with an empty batch: the generation alone.
    func refreshGeneration(log: (String) -> Void) {
        guard let decisions = try? source.decide(vm: settings.vm, files: [], deadline: settings.deadline) else { return }
        adopt(generation: decisions.generation, onTimeout: decisions.onTimeout, log: log)
        requestAllowSet()
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
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(PATH_MAX) + 1) { buffer in
            let count = buffer.withMemoryRebound(to: CChar.self) { readlink("/proc/self/fd/\(descriptor)", $0.baseAddress!, $0.count - 1) }
            guard count > 0 else { return "/" }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
        }
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
