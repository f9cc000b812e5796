import ArgumentParser
import Foundation
import Glibc
import UkeyGuard

/// `ukey-guard`: the run-time whitelist enforced by the kernel. Every exec on the guarded mounts
/// waits until ukey-guard answers; it answers from ukeyd's whitelist for this VM.
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

    @Option(help: "The VM's guard port (in a guest), such as /dev/virtio-ports/io.ukey.guard.0: ukeyd knows the VM from it.")
    var port: String?

    @Option(help: "On the host, the entity whose whitelist applies. Default vmm. Refused with --port: a guest's VM is its channel's.")
    var vm: String?

    @Option(name: .customLong("mount"), help: "A mount to guard (repeat); default /.")
    var mounts: [String] = []

    @Option(help: "Seconds to wait for a decision before answering by the policy's on-timeout.")
    var deadline: Double = 2

    @Flag(help: "On the host, ask ukeyd about every file instead of holding the VM's allow set (16 bytes an entry) and allowing a listed file without a call.")
    var noAllowSet = false

    func run() throws {
        guard deadline > 0, deadline <= 60 else { throw ValidationError("--deadline must be in (0, 60] seconds") }
        if port != nil {
            guard vm == nil else { throw ValidationError("--vm cannot be given with --port: in a guest the VM is the one the channel belongs to, and ukeyd knows it from the channel") }
            guard socket == nil else { throw ValidationError("give --socket (on the host) or --port (in a guest), not both") }
        }
        // SIGTERM and SIGINT end the loop between events: blocked first, before any thread starts.
        let stop = try StopSignals.descriptor()
        let vm = vm ?? "vmm"
        let socket = socket ?? "/run/ukey/ukeyd.sock"
        let group = try FanotifyGroup()
        for mount in mounts.isEmpty ? ["/"] : mounts { try group.guardMount(mount) }
        var settings = ExecGuard.Settings(vm: port == nil ? vm : "this guest")
        settings.deadline = deadline
        settings.holdsAllowSet = !noAllowSet
        // On the host, ukeyd's socket, and the start and stop are reported for its audit log; in a
        // guest, the VM's port, where only CheckExec may be asked (ukeyd logs the channel instead).
        let host = port == nil ? DaemonDecisions(socket: socket) : nil
        let source: DecisionSource = try host ?? PortDecisions(path: port!)
        let guardLoop = ExecGuard(group: group, source: source, settings: settings)
        let guarded = mounts.isEmpty ? ["/"] : mounts
        let say: (String) -> Void = { FileHandle.standardError.write(Data("ukey-guard: \($0)\n".utf8)) }
        do {
            try host?.report("start", vm: vm, mounts: guarded, deadline: deadline)
        } catch {
            say("ukeyd did not record the start (\(error)); guarding anyway")
        }
        say("guarding \(guarded.joined(separator: ", ")) \(port == nil ? "for \(vm); decisions from \(socket)" : "in this guest; decisions from \(port!)")")
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        try guardLoop.run(log: say, stop: stop)
        try? host?.report("stop", vm: vm, mounts: guarded, deadline: deadline)
        say("stopped after \(guardLoop.counters.allowed) allowed (\(guardLoop.counters.allowedLocally) from the allow set), \(guardLoop.counters.denied) denied, \(guardLoop.counters.hashed) hashed")
    }
}
