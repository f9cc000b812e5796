import Foundation
import Glibc
import Synchronization

/// The exec guard: answers every exec the kernel holds on the guarded file systems, and every
/// open that loads a program without an exec (`ProgramLoads`: a runtime linker run as a program,
/// an interpreter reading a script), from a cache of decisions keyed by the file's identity and
/// the decision state's generation, asking the decision source about files it has not seen (one
/// batch for all that is pending at once). A cached decision is for the path it was made under:
/// a file with more than one name is checked under the name it is run by.
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
        /// The loaders and interpreters whose opens are judged (nil: only execs are).
        public var programLoads: ProgramLoads? = ProgramLoads()

        public init(vm: String) {
            self.vm = vm
        }
    }

    let group: FanotifyGroup
    let source: DecisionSource
    let settings: Settings
    let hasher = DescriptorHasher()
    /// Decisions by file identity, valid for `generation` only, each with the path it was made for.
    private var cache: [FileIdentity: (allow: Bool, path: String)] = [:]
    public private(set) var generation: UInt64?
    private var onTimeout = false
    /// Whether the rule set lets interpreters read any script (`interpreters: allow`).
    private var interpretersAllowed = false
    /// The last exec answered: the kernel then holds the same file's open by the same process,
    /// which is the exec's, not a load of its own.
    private var lastExec: (pid: Int32, file: FileKey, allow: Bool)?
    /// Files whose opens the kernel lets through already (`FanotifyGroup.ignoreOpens`), so a warm
    /// exec makes no system call for it again; emptied with the marks when the generation moves.
    private var opensIgnored = Set<FileKey>()
    private let ownPID = getpid()
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
        /// Opens judged as program loads (by a loader or an interpreter).
        public var loadsChecked = 0
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
    public func run(log: (String) -> Void, stop: Int32, mounts: MountWatch? = nil) throws {
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
            switch try group.wait(timeout: timeout, stop: stop, mounts: mounts?.descriptor ?? -1, into: &events) {
            case .events: serve(events, log: log)
            case .stop: return
            case .mountsChanged: mounts?.changed(group, log)
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
            // Its own opens (a library the runtime loads late) never wait on its own loop.
            if event.pid == ownPID {
                answer(event, allow: true)
                continue
            }
            if !event.isExec && !isProgramLoad(event) {
                answer(event, allow: true)
                continue
            }
            guard let identity = FileIdentity(descriptor: event.fd) else {
                // An exec of what is not a regular file: nothing a whitelist can vouch for.
                answer(event, allow: !event.isExec)
                continue
            }
            if own.contains(identity.file) {
                answer(event, allow: true)
                continue
            }
            if !event.isExec, let last = lastExec, last.pid == event.pid, last.file == identity.file {
                answer(event, allow: last.allow)  // the exec's own open, by the process still running the old program
                continue
            }
            var path: String?
            if let cached = cache[identity] {
                // One name: the cached path is the file's. More: the name it is run by decides.
                if identity.links <= 1 {
                    answer(event, allow: cached.allow, file: identity.file, links: identity.links)
                    continue
                }
                let current = Self.path(of: event.fd)
                if current == cached.path {
                    answer(event, allow: cached.allow, file: identity.file, links: identity.links)
                    continue
                }
                path = current
            }
            guard let sha256 = hasher.sha256(event.fd) else {
                answer(event, allow: false, file: identity.file)
                continue
            }
            counters.hashed += 1
            pending.append(
                Pending(event: event, identity: identity, path: path ?? Self.path(of: event.fd), sha256: sha256)
            )
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
            let decisions = try source.decide(
                vm: settings.vm,
                files: undecided.map { ($0.path, $0.sha256) },
                deadline: settings.deadline
            )
            adopt(decisions, log: log)
            for (item, allowed) in zip(undecided, decisions.allowed) { store(item, allow: allowed) }
        } catch {
            counters.timedOut += undecided.count
            log(
                "no decision in time (\(error)); answering \(undecided.count) exec(s) by on-timeout: \(onTimeout ? "allow" : "deny")"
            )
            for item in undecided { answer(item.event, allow: onTimeout, file: item.identity.file) }
        }
    }

    /// Whether a held open loads a program (`ProgramLoads`): read through /proc and the held
    /// descriptor only, never by opening a path (which would be held too).
    private func isProgramLoad(_ event: FanotifyGroup.Event) -> Bool {
        guard let loads = settings.programLoads, let executable = OpenerView.executable(pid: event.pid),
            let opener = loads.opener(executable: executable)
        else { return false }
        var head = [UInt8](repeating: 0, count: 4)
        let count = head.withUnsafeMutableBytes { pread(event.fd, $0.baseAddress, 4, 0) }
        head = count > 0 ? Array(head[0..<count]) : []
        switch opener {
        case .loader:
            guard ProgramLoads.isELF(head) else { return false }
        case .interpreter:
            guard !interpretersAllowed else { return false }
            if !ProgramLoads.isCode(head: head, path: Self.path(of: event.fd)) {
                // Not code by its form: a load only when it is the script the interpreter runs.
                guard let script = ProgramLoads.scriptArgument(OpenerView.arguments(pid: event.pid)),
                    let identity = FileIdentity(descriptor: event.fd),
                    OpenerView.names(pid: event.pid, path: script, key: identity.file)
                else { return false }
            }
        }
        counters.loadsChecked += 1
        return true
    }

    /// Fetches the allow set of the current generation in the background, unless it was
    /// fetched for this generation already or a fetch runs; a failed fetch is tried again at the
    /// next refresh.
    private func requestAllowSet() {
        guard settings.holdsAllowSet, let fetcher = (source as? AllowSetSource)?.allowSetFetcher, let generation else {
            return
        }
        let start = allowSet.state.withLock { state -> Bool in
            guard state.fetched != generation, !state.running else { return false }
            state.running = true
            return true
        }
        guard start else { return }
        let slot = allowSet
        let vm = settings.vm
        let deadline = max(settings.deadline, 10)
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
        cache[item.identity] = (allow, item.path)
        answer(item.event, allow: allow, file: item.identity.file, links: item.identity.links)
    }

    /// Asks with an empty batch: the generation alone.
    func refreshGeneration(log: (String) -> Void) {
        guard let decisions = try? source.decide(vm: settings.vm, files: [], deadline: settings.deadline) else {
            return
        }
        adopt(decisions, log: log)
        requestAllowSet()
    }

    private func adopt(_ decisions: Decisions, log: (String) -> Void) {
        let new = decisions.generation
        onTimeout = decisions.onTimeout
        interpretersAllowed = decisions.interpretersAllowed
        if generation != new {
            if generation != nil { log("decision state moved to generation \(new): cache of \(cache.count) dropped") }
            cache = [:]
            group.forgetIgnoredOpens()
            opensIgnored = []
            generation = new
        }
    }

    /// Answers an event; an exec's answer is remembered for the open that follows it, and an
    /// allowed exec of a file with one name lets its opens through without events (`ignoreOpens`:
    /// with several names, an open under another one must be judged by that name).
    private func answer(_ event: FanotifyGroup.Event, allow: Bool, file: FileKey? = nil, links: UInt64 = 0) {
        if event.isExec, let file { lastExec = (event.pid, file, allow) }
        if event.isExec && allow && links == 1 && settings.programLoads != nil, let file,
            opensIgnored.count < settings.cacheLimit,
            opensIgnored.insert(file).inserted
        {
            group.ignoreOpens(of: event)
        }
        if event.isExec || file != nil {
            if allow { counters.allowed += 1 } else { counters.denied += 1 }
        }
        group.answer(event, allow: allow)
    }

    /// The path the kernel gives for the event's descriptor.
    static func path(of descriptor: Int32) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(PATH_MAX) + 1) { buffer in
            let count = buffer.withMemoryRebound(to: CChar.self) {
                readlink("/proc/self/fd/\(descriptor)", $0.baseAddress!, $0.count - 1)
            }
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
