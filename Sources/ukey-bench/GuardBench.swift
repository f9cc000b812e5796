import UkeyAPI
import Crypto
import Foundation
import UkeyClient
import UkeyCore
import UkeyVarlink

#if canImport(Glibc)
import Glibc
#endif

/// ukey-guard against fapolicyd on this host, in one run: a whitelist of 1,000,000
/// entries plus the test programs for ukey-guard, in its allow-list format; fapolicyd gets the
/// first 100,000 of them in its trust-file format, because its file backend cannot load a
/// million here (measured: 100,000 entries 68 s, 200,000 entries 368 s, growing faster than the
/// count; a million did not finish in 5 minutes), and a smaller database only favours it.
/// Execs of one program (warm: cached after the first) and one exec each of many copies (cold:
/// each file's first exec), four ways: no enforcement, fapolicyd enforcing, ukey-guard enforcing
/// with its VM's allow set (the default), and ukey-guard asking ukeyd about every file
/// (`--no-allow-set`, what a guest's guard does over its port). Only one tool enforces at a
/// time, both on a tmpfs of the bench's own (fapolicyd's rules deny only there); each is stopped
/// by its PID, and /etc/fapolicyd is put back as it was.
///
/// The shared host's load swings an exec's time by more than a tool adds, so each tool's figure
/// comes from blocks of execs on the watched tmpfs and on a ramfs no tool watches, run back to
/// back while the tool runs: both sides of a pair see the same moment of the host.
enum GuardBench {
    /// Warm: this many pairs of blocks, each pair `warmBlock` execs of one program on the watched
    /// tmpfs and as many of its copy on the unwatched ramfs, back to back.
    static let warmPairs = 400
    static let warmBlock = 20
    /// Cold: pairs of blocks of `coldBlock` fresh files each, one exec a file.
    static let coldPairs = 120
    static let coldBlock = 5
    static var coldFiles: Int { coldPairs * coldBlock }
    /// The calibration (no tool) and the three tools each take a fresh set of cold files.
    static let ways = 4
    static let entries = 1_000_000
    static let fapolicydEntries = 100_000

    struct Timing {
        var warm: Double  // seconds added per exec
        var cold: Double  // seconds added per exec
    }

    static func run(ukeyd: String, guardBinary: String, work: String) throws {
        let mount = work + "/mnt"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        guard shell("/bin/mount", ["-t", "tmpfs", "-o", "size=512m,mode=0755", "tmpfs", mount]) == 0 else {
            throw BenchError("cannot mount a tmpfs for the guard bench")
        }
        defer { _ = shell("/bin/umount", ["-l", mount]) }

        let program = Array(try Data(contentsOf: URL(fileURLWithPath: "/usr/bin/true")))
        let digest = Hex.encode(SHA256.hash(data: program))
        // Fresh cold files for every round of each of the three tools (fapolicyd, ukey-guard with
        // its allow set, ukey-guard asking ukeyd about every file), on the tmpfs both tools watch;
        // and as many on a ramfs, which neither watches (fapolicyd watches tmpfs; ukey-guard marks
        // the tmpfs alone) and which execs as fast as a tmpfs (a disk filesystem here took 50%
        // longer): the bare execs each round is paired with.
        var files = [mount + "/prog"] + (0..<coldFiles * ways).map { "\(mount)/cold-\($0)" }
        let bareDirectory = work + "/bare"
        try FileManager.default.createDirectory(atPath: bareDirectory, withIntermediateDirectories: true)
        guard shell("/bin/mount", ["-t", "ramfs", "-o", "mode=0755", "ramfs", bareDirectory]) == 0 else {
            throw BenchError("cannot mount a ramfs for the guard bench")
        }
        defer { _ = shell("/bin/umount", ["-l", bareDirectory]) }
        let bareFiles = [bareDirectory + "/prog"] + (0..<coldFiles * ways).map { "\(bareDirectory)/cold-\($0)" }
        for file in files + bareFiles {
            guard
                FileManager.default.createFile(
                    atPath: file,
                    contents: Data(program),
                    attributes: [.posixPermissions: 0o755]
                )
            else { throw BenchError("cannot write \(file)") }
        }
        var untrusted = program
        untrusted[untrusted.count - 16] ^= 1
        _ = FileManager.default.createFile(
            atPath: mount + "/untrusted",
            contents: Data(untrusted),
            attributes: [.posixPermissions: 0o755]
        )

        // The same million entries in both formats, and the test programs.
        var trust = ""
        var allow = ""
        trust.reserveCapacity(entries * 110)
        allow.reserveCapacity(entries * 110)
        for n in 0..<entries {
            let fake = Hex.encode(SHA256.hash(data: Array("file \(n)".utf8)))
            let path = "/usr/lib/pkg-\(n % 5000)/lib\(n).so.1"
            if n < fapolicydEntries { trust += "\(path) \(4096 + n % 100_000) \(fake)\n" }
            allow += "\(fake)  \(path)\n"
        }
        for file in files {
            trust += "\(file) \(program.count) \(digest)\n"
            allow += "\(digest)  \(file)\n"
        }
        files.removeFirst()
        // Cold files: a fresh set for each way, so each exec is a file's first.
        var coldSets = stride(from: 0, to: files.count, by: coldFiles).map { Array(files[$0..<$0 + coldFiles]) }
        var bareSets = stride(from: 1, to: bareFiles.count, by: coldFiles).map { Array(bareFiles[$0..<$0 + coldFiles]) }
        let watchedProgram = mount + "/prog"
        let bareProgram = bareDirectory + "/prog"
        /// The time per exec on the watched tmpfs over the unwatched ramfs: the median over pairs
        /// of blocks run back to back (which goes first alternates), so a slow moment of the
        /// shared host weighs on both sides of a pair. Minus the same difference with no tool
        /// running (`calibration`), this is what a tool adds.
        func difference() -> (warm: Double, cold: Double, bareWarm: Double, warmSpread: (Double, Double)) {
            var warm: [Double] = []
            var cold: [Double] = []
            var bare: [Double] = []
            // The exec loop stays on one CPU (the tool's processes go where the scheduler puts
            // them): a loop that moves between CPUs from one block to the next adds its own noise.
            let pinned = pinToFirstCPU()
            defer { restoreAffinity(pinned) }
            _ = spawn(watchedProgram)
            _ = spawn(bareProgram)
            for pair in 0..<warmPairs {
                let (watched, unwatched) = timedPair(first: pair % 2 == 0) {
                    for _ in 0..<warmBlock { _ = spawn(watchedProgram) }
                } _: {
                    for _ in 0..<warmBlock { _ = spawn(bareProgram) }
                }
                warm.append((watched - unwatched) / Double(warmBlock))
                bare.append(unwatched / Double(warmBlock))
            }
            let coldWatched = coldSets.removeFirst()
            let coldBare = bareSets.removeFirst()
            for pair in 0..<coldPairs {
                let range = pair * coldBlock..<(pair + 1) * coldBlock
                let (watched, unwatched) = timedPair(first: pair % 2 == 0) {
                    for file in coldWatched[range] { _ = spawn(file) }
                } _: {
                    for file in coldBare[range] { _ = spawn(file) }
                }
                cold.append((watched - unwatched) / Double(coldBlock))
            }
            let sorted = warm.sorted()
            return (median(warm), median(cold), median(bare), (sorted[sorted.count / 4], sorted[sorted.count * 3 / 4]))
        }
        let calibration = difference()
        var spreads: [String] = []
        func added(_ name: String) -> Timing {
            let measured = difference()
            spreads.append(
                String(format: "%@ %+.1f to %+.1f us", name, measured.warmSpread.0 * 1e6, measured.warmSpread.1 * 1e6)
            )
            return Timing(warm: measured.warm - calibration.warm, cold: measured.cold - calibration.cold)
        }
        let allowPath = work + "/guard-bench.list"
        try Data(allow.utf8).write(to: URL(fileURLWithPath: allowPath))

        print(
            "\nexec guard against fapolicyd: \(entries + files.count + 1) trusted entries for ukey-guard, \(fapolicydEntries + files.count + 1) for fapolicyd (its file backend cannot load a million here); warm: \(warmPairs) pairs of \(warmBlock) execs of one program, on the watched tmpfs and on an unwatched ramfs back to back; cold: \(coldPairs) pairs of \(coldBlock) fresh files; a tool's added time is the median pair's difference less the same difference with no tool"
        )

        let fapolicyd = try FapolicydRun(trust: trust, directory: mount + "/", work: work)
        let denied = spawn(mount + "/untrusted")
        guard denied == EPERM else {
            fapolicyd.stop()
            throw BenchError("fapolicyd did not refuse an untrusted program (spawn: \(denied)): not enforcing")
        }
        if fapolicyd.asRoot { print("  (fapolicyd runs as root: on this machine it cannot drop to its own user)") }
        let underFapolicyd = added("fapolicyd")
        let fapolicydRSS = ExecBench.memory(pid: fapolicyd.pid).rss
        fapolicyd.stop()

        let policy = """
            version: 1
            mode: enforce
            entities:
              - name: vmm
                parent: root
                kind: host
                components:
                  - name: marker
                    digest: sha256:\(digest)
            runtime:
              - vm: vmm
                default: deny
                allow-list:
                  file: \(allowPath)
                  digest: sha256:\(Hex.encode(SHA256.hash(data: Array(allow.utf8))))

            """
        let daemon = try DaemonBench.start(binary: ukeyd, policy: policy, name: "guard")
        defer { daemon.stop() }
        _ = try VarlinkConnection(path: daemon.socket).call(
            Boot.Measure.self,
            .init(entity: "vmm", component: "marker", digest: "sha256:" + digest)
        )
        // The default: the guard holds the VM's allow set (measured once it has fetched it).
        let guarding = try GuardProcess(
            binary: guardBinary,
            socket: daemon.socket,
            mount: mount,
            work: work,
            allowSet: true
        )
        let refused = spawn(mount + "/untrusted")
        guard refused == EPERM else {
            guarding.stop()
            throw BenchError("ukey-guard did not refuse an untrusted program (spawn: \(refused))")
        }
        let underGuard = added("ukey-guard")
        let guardRSS = ExecBench.memory(pid: guarding.pid).rss
        let ukeydRSS = ExecBench.memory(pid: daemon.pid).rss
        guarding.stop()
        // --no-allow-set: one call to ukeyd per cold exec, as a guest's guard makes over its port.
        let asking = try GuardProcess(
            binary: guardBinary,
            socket: daemon.socket,
            mount: mount,
            work: work,
            allowSet: false
        )
        let underAsking = added("ukey-guard --no-allow-set")
        let askingRSS = ExecBench.memory(pid: asking.pid).rss
        asking.stop()

        func us(_ seconds: Double) -> Double { max(0, seconds) * 1e6 }
        let fWarm = us(underFapolicyd.warm)
        let gWarm = us(underGuard.warm)
        let aWarm = us(underAsking.warm)
        let fCold = us(underFapolicyd.cold)
        let gCold = us(underGuard.cold)
        let aCold = us(underAsking.cold)
        print(
            String(
                format:
                    "  bare exec (posix_spawn + wait of /usr/bin/true, unwatched): %.0f us; with no tool running, the watched tmpfs over the ramfs: warm %+.1f us, cold %+.1f us (taken off each tool's figure)",
                calibration.bareWarm * 1e6,
                calibration.warm * 1e6,
                calibration.cold * 1e6
            )
        )
        print(
            String(
                format: "  added per exec, warm: fapolicyd %.1f us, ukey-guard %.1f us (x%.2f of fapolicyd's)",
                fWarm,
                gWarm,
                gWarm / max(fWarm, 0.001)
            )
        )
        print(
            String(
                format: "  added per exec, cold: fapolicyd %.1f us, ukey-guard %.1f us (x%.2f of fapolicyd's)",
                fCold,
                gCold,
                gCold / max(fCold, 0.001)
            )
        )
        print(
            String(
                format:
                    "  ukey-guard --no-allow-set (a call to ukeyd per cold exec, as in a guest): warm %.1f us, cold %.1f us (x%.2f of fapolicyd's)",
                aWarm,
                aCold,
                aCold / max(fCold, 0.001)
            )
        )
        print(
            String(
                format:
                    "  resident memory: fapolicyd %.0f MB; ukey-guard %.0f MB with the allow set (%.0f MB without) + ukeyd %.0f MB",
                fapolicydRSS,
                guardRSS,
                askingRSS,
                ukeydRSS
            )
        )
        print(
            String(
                format: "  warm, the middle half of the pairs' differences (before the calibration's %+.1f us): ",
                calibration.warm * 1e6
            )
                + ([
                    "no tool "
                        + String(
                            format: "%+.1f to %+.1f us",
                            calibration.warmSpread.0 * 1e6,
                            calibration.warmSpread.1 * 1e6
                        )
                ] + spreads).joined(separator: "; ")
        )
        print(
            "goal: warm at most 0.5x fapolicyd's: \(gWarm <= fWarm * 0.5 ? "met" : "NOT met"); cold within 1.2x: \(gCold <= fCold * 1.2 ? "met" : "NOT met")"
        )
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// sched_getaffinity and sched_setaffinity, which Swift's Glibc module leaves out (they are
    /// GNU extensions): looked up once, called through their C signature.
    typealias AffinityCall = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
    static let affinity: (get: AffinityCall, set: AffinityCall)? = {
        guard let get = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_getaffinity"),
            let set = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_setaffinity")
        else { return nil }
        return (unsafeBitCast(get, to: AffinityCall.self), unsafeBitCast(set, to: AffinityCall.self))
    }()

    /// Pins the calling thread (the exec loop; children it spawns inherit it) to the first CPU it
    /// may use, and returns the affinity it had (nil if it could not).
    static func pinToFirstCPU() -> [UInt8]? {
        guard let affinity else { return nil }
        var before = [UInt8](repeating: 0, count: 128)
        guard before.withUnsafeMutableBytes({ affinity.get(0, $0.count, $0.baseAddress!) }) == 0,
            let index = before.firstIndex(where: { $0 != 0 })
        else { return nil }
        var first = [UInt8](repeating: 0, count: before.count)
        first[index] = before[index] & (~before[index] &+ 1)  // its lowest set bit
        _ = first.withUnsafeMutableBytes { affinity.set(0, $0.count, $0.baseAddress!) }
        return before
    }

    static func restoreAffinity(_ mask: [UInt8]?) {
        guard let affinity, var mask else { return }
        _ = mask.withUnsafeMutableBytes { affinity.set(0, $0.count, $0.baseAddress!) }
    }

    /// Times two blocks back to back, `watched` first or second: (watched, unwatched) seconds.
    static func timedPair(first watchedFirst: Bool, _ watched: () -> Void, _ unwatched: () -> Void) -> (Double, Double)
    {
        let clock = ContinuousClock()
        func timed(_ body: () -> Void) -> Double {
            let start = clock.now
            body()
            return ExecBench.seconds(clock.now - start)
        }
        if watchedFirst {
            let w = timed(watched)
            return (w, timed(unwatched))
        }
        let u = timed(unwatched)
        return (timed(watched), u)
    }

    /// posix_spawn and wait: 0, or the errno of a refused exec.
    static func spawn(_ path: String) -> Int32 {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        defer { argv.forEach { free($0) } }
        let result = posix_spawn(&pid, path, nil, nil, argv, environ)
        guard result == 0 else { return result }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return 0
    }

    static func shell(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// fapolicyd with the bench's configuration: trust from a file only, SHA-256 integrity, and
/// rules that deny untrusted execs in the bench's directory alone. /etc/fapolicyd is saved first
/// and restored by `stop`.
final class FapolicydRun {
    let saved: String
    var pid: Int32 { process.processIdentifier }

    /// Whether fapolicyd had to run as root (a machine where it cannot drop to its own user:
    /// libcap-ng clears the bounding set, which a container may not allow).
    private(set) var asRoot = false
    private var process = Process()

    init(trust: String, directory: String, work: String) throws {
        saved = work + "/fapolicyd.saved"
        try? FileManager.default.removeItem(atPath: saved)
        try FileManager.default.copyItem(atPath: "/etc/fapolicyd", toPath: saved)
        let conf = """
            permissive = 0
            nice_val = 14
            q_size = 640
            uid = fapolicyd
            gid = fapolicyd
            do_stat_report = 0
            detailed_report = 0
            db_max_size = 512
            subj_cache_size = 1549
            obj_cache_size = 8191
            watch_fs = tmpfs
            trust = file
            integrity = sha256
            syslog_format = rule,dec,perm,auid,pid,exe,:,path,ftype,trust
            rpm_sha256_only = 0
            allow_filesystem_mark = 0

            """
        let rules =
            "allow perm=execute all : trust=1\ndeny perm=execute all : dir=\(directory)\nallow perm=any all : all\n"
        try conf.write(toFile: "/etc/fapolicyd/fapolicyd.conf", atomically: true, encoding: .utf8)
        for file in (try? FileManager.default.contentsOfDirectory(atPath: "/etc/fapolicyd/rules.d")) ?? [] {
            try FileManager.default.removeItem(atPath: "/etc/fapolicyd/rules.d/" + file)
        }
        try rules.write(toFile: "/etc/fapolicyd/rules.d/10-ukey-bench.rules", atomically: true, encoding: .utf8)
        try rules.write(toFile: "/etc/fapolicyd/compiled.rules", atomically: true, encoding: .utf8)
        try "".write(toFile: "/etc/fapolicyd/fapolicyd.trust", atomically: true, encoding: .utf8)
        try trust.write(toFile: "/etc/fapolicyd/trust.d/ukey-bench", atomically: true, encoding: .utf8)
        let log = work + "/fapolicyd.log"
        if try start(log: log) { return }
        if let text = try? String(contentsOfFile: log, encoding: .utf8), text.contains("Cannot change to uid") {
            asRoot = true
            try conf.replacingOccurrences(of: "uid = fapolicyd\ngid = fapolicyd", with: "uid = root\ngid = root")
                .write(toFile: "/etc/fapolicyd/fapolicyd.conf", atomically: true, encoding: .utf8)
            if try start(log: log) { return }
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        stop()
        throw BenchError("fapolicyd did not start listening: \(text.suffix(3000))")
    }

    /// Starts fapolicyd in the foreground; true once it listens (loading a million trust entries
    /// takes a while), false if it exited.
    private func start(log: String) throws -> Bool {
        try? FileManager.default.removeItem(atPath: "/var/lib/fapolicyd/data.mdb")
        try? FileManager.default.removeItem(atPath: "/var/lib/fapolicyd/lock.mdb")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/fapolicyd")
        process.arguments = ["--debug-deny"]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        for _ in 0..<3000 {
            if let text = try? String(contentsOfFile: log, encoding: .utf8),
                text.contains("Starting to listen for events")
            {
                return true
            }
            guard process.isRunning else { return false }
            usleep(100_000)
        }
        return false
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            for _ in 0..<100 where process.isRunning { usleep(100_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        guard FileManager.default.fileExists(atPath: saved) else { return }
        try? FileManager.default.removeItem(atPath: "/etc/fapolicyd")
        try? FileManager.default.moveItem(atPath: saved, toPath: "/etc/fapolicyd")
    }
}

/// ukey-guard on one mount, stopped by its PID.
final class GuardProcess {
    let process = Process()
    var pid: Int32 { process.processIdentifier }

    /// Starts the guard; with `allowSet`, returns once it says it holds the VM's allow set.
    init(binary: String, socket: String, mount: String, work: String, allowSet: Bool) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        // --allow-user-namespaces: this host lets users make them (the guard says so and goes on).
        process.arguments =
            ["--socket", socket, "--vm", "vmm", "--mount", mount, "--allow-user-namespaces"]
            + (allowSet ? [] : ["--no-allow-set"])
        let ready = Pipe()
        let log = work + "/ukey-guard.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = ready
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        guard String(decoding: ready.fileHandleForReading.availableData, as: UTF8.self).hasPrefix("ready") else {
            throw BenchError("ukey-guard did not start")
        }
        guard allowSet else { return }
        for _ in 0..<600 {
            let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if said.contains("allow set of generation") { return }
            usleep(100_000)
        }
        stop()
        throw BenchError(
            "ukey-guard did not fetch its allow set in 60 s: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")"
        )
    }

    func stop() {
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
