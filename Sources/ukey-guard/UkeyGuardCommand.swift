import ArgumentParser
import Foundation
import Glibc
import UkeyGuard

/// `ukey-guard`: the run-time whitelist enforced by the kernel. Every exec on the guarded file
/// systems, and every open by which a runtime linker or an interpreter loads a program, waits
/// until ukey-guard answers; it answers from ukeyd's whitelist for this VM.
@main
struct UkeyGuardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ukey-guard",
        abstract: "Enforce ukeyd's run-time whitelist with fanotify: execs not on the VM's list fail with EPERM.",
        discussion: """
            If ukey-guard stops, the kernel lets every exec through again: run it under systemd with \
            Restart=always (systemd/ukey-guard.service).
            """
    )

    @Option(help: "ukeyd's socket (on the host). Default /run/ukey/ukeyd.sock.")
    var socket: String?

    @Option(
        help: "The VM's guard port (in a guest), such as /dev/virtio-ports/io.ukey.guard.0: ukeyd knows the VM from it."
    )
    var port: String?

    @Option(
        help:
            "On the host, the entity whose whitelist applies. Default vmm. Refused with --port: a guest's VM is its channel's."
    )
    var vm: String?

    @Option(
        name: .customLong("mount"),
        help:
            "Guard the file system that holds this path (repeat); default every file system of this mount namespace that can hold a program, and each one mounted later."
    )
    var mounts: [String] = []

    @Option(
        help:
            "Interpreters whose script reads are judged as execs, by executable name (a version suffix is allowed), comma-separated; replaces the default list."
    )
    var interpreters: String?

    @Option(
        help:
            "Runtime linkers whose loads, when run as programs (ld.so ./prog), are judged as execs, comma-separated; replaces the default list."
    )
    var loaders: String?

    @Flag(
        help:
            "Guard even where a program in a memfd can run (a kernel without vm.memfd_noexec, before 6.3); the gap is recorded in ukeyd's audit log."
    )
    var allowMemfdExec = false

    @Flag(
        help:
            "Guard even while unprivileged users may make user namespaces (and so mount a tmpfs no guard has marked); the gap is recorded in ukeyd's audit log."
    )
    var allowUserNamespaces = false

    @Option(help: "Seconds to wait for a decision before answering by the policy's on-timeout.")
    var deadline: Double = 2

    @Flag(
        help:
            "On the host, ask ukeyd about every file instead of holding the VM's allow set (16 bytes an entry) and allowing a listed file without a call."
    )
    var noAllowSet = false

    func run() throws {
        guard deadline > 0, deadline <= 60 else { throw ValidationError("--deadline must be in (0, 60] seconds") }
        if port != nil {
            guard vm == nil else {
                throw ValidationError(
                    "--vm cannot be given with --port: in a guest the VM is the one the channel belongs to, and ukeyd knows it from the channel"
                )
            }
            guard socket == nil else {
                throw ValidationError("give --socket (on the host) or --port (in a guest), not both")
            }
        }
        // SIGTERM and SIGINT end the loop between events: blocked first, before any thread starts.
        let stop = try StopSignals.descriptor()
        let vm = vm ?? "vmm"
        let socket = socket ?? "/run/ukey/ukeyd.sock"
        let say: (String) -> Void = { FileHandle.standardError.write(Data("ukey-guard: \($0)\n".utf8)) }
        let gaps: [String]
        do {
            let closed = try KernelGaps().close(
                allowMemfdExec: allowMemfdExec,
                allowUserNamespaces: allowUserNamespaces
            )
            closed.notes.forEach(say)
            gaps = closed.accepted
        } catch {
            throw ValidationError("refusing to guard: \(error)")
        }
        var loads = ProgramLoads()
        if let interpreters { loads.interpreters = Self.list(interpreters) }
        if let loaders { loads.loaders = Self.list(loaders) }
        let group = try FanotifyGroup()
        let watch: MountWatch?
        var guarded: [String]
        if mounts.isEmpty {
            let all = try MountWatch(opens: true)
            let (marked, failed) = all.guardNew(group)
            guard failed.isEmpty else {
                throw ValidationError("refusing to guard: cannot mark \(failed.joined(separator: "; "))")
            }
            watch = all
            guarded = marked
        } else {
            for mount in mounts { try group.guardFileSystem(mount, opens: true) }
            watch = nil
            guarded = mounts
        }
        var settings = ExecGuard.Settings(vm: port == nil ? vm : "this guest")
        settings.deadline = deadline
        settings.holdsAllowSet = !noAllowSet
        settings.programLoads = loads
        // On the host, ukeyd's socket, and the start and stop are reported for its audit log; in a
        // guest, the VM's port, where only CheckExec may be asked (ukeyd logs the channel instead).
        let source: DecisionSource = try port.map { try PortDecisions(path: $0) } ?? DaemonDecisions(socket: socket)
        let guardLoop = ExecGuard(group: group, source: source, settings: settings)
        do {
            try source.report(.start, vm: vm, mounts: guarded, gaps: gaps, deadline: deadline)
        } catch {
            say("ukeyd did not record the start (\(error)); guarding anyway")
        }
        if !gaps.isEmpty { say("ACCEPTED GAPS: \(gaps.joined(separator: ", ")) (see --help)") }
        say(
            "guarding \(guarded.joined(separator: ", ")) \(port == nil ? "for \(vm); decisions from \(socket)" : "in this guest; decisions from \(port!)")"
        )
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        try guardLoop.run(log: say, stop: stop, mounts: watch)
        try? source.report(.stop, vm: vm, mounts: guarded, gaps: gaps, deadline: deadline)
        say(
            "stopped after \(guardLoop.counters.allowed) allowed (\(guardLoop.counters.allowedLocally) from the allow set), \(guardLoop.counters.denied) denied, \(guardLoop.counters.hashed) hashed, \(guardLoop.counters.loadsChecked) loads by a linker or an interpreter judged"
        )
    }

    static func list(_ text: String) -> [String] {
        text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
