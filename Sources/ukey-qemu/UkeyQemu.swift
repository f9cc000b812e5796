import Foundation
import UkeyClient
import UkeyGuestGate
import UkeyHypervisor
import UkeyVarlink
#if canImport(Glibc)
import Glibc
#endif

/// `ukey-qemu QEMU-ARGUMENTS...`: the libvirt hook's gate for hosts without libvirt. It reads the
/// qemu command line as QEMU 7.2 does, default-deny (`QemuCommandLine`), asks ukeyd to measure
/// all it loads, parents first, each file held to what ukeyd hashed, and only when every answer
/// says `load: true` runs the real qemu (`$UKEY_QEMU`, else qemu-system-x86_64 from
/// /usr/bin:/bin) with the arguments unchanged but for a leading `-no-user-config` (QEMU would
/// otherwise read /etc/qemu/qemu.conf, which can add devices), in `/` (QEMU looks its ROMs up in
/// its working directory first) and with an environment of its own (no LD_PRELOAD, no
/// QEMU_MODULE_DIR: only PATH, TERM, the locale, and the display's variables pass). Otherwise it
/// exits 1 with the reason, and qemu never runs.
///
/// It does not exec qemu: it waits for it as its child (posix_spawn, then waitpid), passes it
/// SIGTERM, SIGINT and SIGHUP, and exits with qemu's status (128 + the signal, when a signal ended
/// it). While qemu runs it watches qemu's open files (/proc/PID/fd): once qemu holds every disk
/// image it was measured for, it tells ukeyd the VM started (`Boot.Started`: the held files are
/// let go, and the VM's writable state will be sealed at its stop). When qemu exits it tells
/// ukeyd the VM stopped (`Boot.Release`), which seals the VM's writable disks before it answers.
/// The guest's entity is `$UKEY_ENTITY`, else qemu's `-name`; a user VM's session is `$UKEY_SESSION`.
@main
struct UkeyQemu {
    static let passedEnvironment: Set<String> = [
        "TERM", "LANG", "LANGUAGE", "TZ", "DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR",
    ]

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let environment = ProcessInfo.processInfo.environment
        let mapping: DomainMapping
        let guest: DomainXML
        do {
            guest = try QemuCommandLine.guest(
                arguments,
                entity: environment["UKEY_ENTITY"],
                session: environment["UKEY_SESSION"]
            )
            GuestGate.begin(guest.entity ?? guest.name)
            mapping = try DomainMapping(
                guest,
                guardDirectory: GuestGate.guardDirectory(),
                vtpmDirectory: GuestGate.vtpmDirectory()
            )
        } catch {
            refuse("ukey-qemu: refusing to start qemu: \(error)")
        }
        if let refusal = GuestGate.refusal(for: mapping, guest: guest.name) {
            refuse(refusal.replacingOccurrences(of: "ukey: ", with: "ukey-qemu: "))
        }
        // -tpmdev emulator on <vtpm directory>/<vm>.sock: ukeyd's vTPM, started for this start only.
        if let refusal = GuestGate.startVTPM(for: mapping, guest: guest.name) {
            _ = GuestGate.release(mapping.vm)
            refuse(refusal.replacingOccurrences(of: "ukey: ", with: "ukey-qemu: "))
        }
        let qemu = environment["UKEY_QEMU"] ?? "/usr/bin/qemu-system-x86_64"
        let qemuArguments =
            (arguments.contains("-no-user-config") || arguments.contains("--no-user-config") ? [] : ["-no-user-config"])
            + arguments
        var childEnvironment = environment.filter { passedEnvironment.contains($0.key) || $0.key.hasPrefix("LC_") }
        childEnvironment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
        // The images qemu keeps open while the guest runs (kernel and firmware it reads once).
        let images = Set(
            mapping.steps.compactMap { step -> String? in
                guard case .file(let path) = step.source,
                    step.component.hasPrefix("disk-") || step.component == "image" || step.component == "nvram"
                else { return nil }
                return URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            }
        )
        let status = run(qemu, qemuArguments, environment: childEnvironment) { pid in
            guard !images.isEmpty, images.isSubset(of: openFiles(of: pid)) else { return false }
            if let problem = GuestGate.started(mapping.vm) {
                FileHandle.standardError.write(
                    Data((problem.replacingOccurrences(of: "ukey: ", with: "ukey-qemu: ") + "\n").utf8)
                )
            }
            return true
        }
        if let problem = GuestGate.release(mapping.vm) {
            FileHandle.standardError.write(
                Data((problem.replacingOccurrences(of: "ukey: ", with: "ukey-qemu: ") + "\n").utf8)
            )
        }
        exit(status)
    }

    /// The files process `pid` has open, by the names the kernel gives them.
    static func openFiles(of pid: pid_t) -> Set<String> {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return [] }
        var paths = Set<String>()
        for entry in entries {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(entry)") {
                paths.insert(target)
            }
        }
        return paths
    }

    /// Runs qemu in / and waits for it, passing the stop signals on; its exit status. While it
    /// runs, `up` is asked every 200 ms (for at most 5 minutes) until it says qemu is up.
    static func run(_ qemu: String, _ arguments: [String], environment: [String: String], up: (pid_t) -> Bool) -> Int32
    {
        var forwarded = sigset_t()
        sigemptyset(&forwarded)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&forwarded, signal) }
        // Blocked here (the child gets them back unblocked), taken with sigtimedwait below.
        pthread_sigmask(SIG_BLOCK, &forwarded, nil)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        guard chdir("/") == 0 else { refuse("ukey-qemu: cannot enter /: \(String(cString: strerror(errno)))") }
        let argv = ([qemu] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, qemu, nil, &attributes, argv, envp)
        guard spawned == 0 else { refuse("ukey-qemu: cannot run \(qemu): \(String(cString: strerror(spawned)))") }
        var watching = true
        let watchUntil = Date().addingTimeInterval(300)
        while true {
            var status: Int32 = 0
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid {
                if status & 0x7F == 0 { return (status >> 8) & 0xFF }
                return 128 + (status & 0x7F)
            }
            var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
            let signal = sigtimedwait(&forwarded, nil, &timeout)
            if signal > 0 { kill(pid, signal) }
            if watching, up(pid) || Date() > watchUntil { watching = false }
        }
    }

    static func refuse(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(1)
    }
}
