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

    @Option(help: "ukeyd's socket.")
    var socket = "/run/ukey/ukeyd.sock"

    @Option(help: "The entity whose whitelist applies: on the host, the VMM's entity.")
    var vm = "vmm"

    @Option(name: .customLong("mount"), help: "A mount to guard (repeat); default /.")
    var mounts: [String] = []

    @Option(help: "Seconds to wait for a decision before answering by the policy's on-timeout.")
    var deadline: Double = 2

    func run() throws {
        guard deadline > 0, deadline <= 60 else { throw ValidationError("--deadline must be in (0, 60] seconds") }
        let group = try FanotifyGroup()
        for mount in mounts.isEmpty ? ["/"] : mounts { try group.guardMount(mount) }
        var settings = ExecGuard.Settings(vm: vm)
        settings.deadline = deadline
        let source = DaemonDecisions(socket: socket)
        let guardLoop = ExecGuard(group: group, source: source, settings: settings)
        let guarded = mounts.isEmpty ? ["/"] : mounts
        let say: (String) -> Void = { FileHandle.standardError.write(Data("ukey-guard: \($0)\n".utf8)) }
        // SIGTERM and SIGINT are taken synchronously between events: the stop is audited, and
        // no exec is left held.
        var stopping = sigset_t()
        sigemptyset(&stopping)
        sigaddset(&stopping, SIGTERM)
        sigaddset(&stopping, SIGINT)
        pthread_sigmask(SIG_BLOCK, &stopping, nil)
        do {
            try source.report("start", vm: vm, mounts: guarded, deadline: deadline)
        } catch {
            say("ukeyd did not record the start (\(error)); guarding anyway")
        }
        say("guarding \(guarded.joined(separator: ", ")) for \(vm); decisions from \(socket)")
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        var now = timespec(tv_sec: 0, tv_nsec: 0)
        try guardLoop.run(log: say, keepGoing: { sigtimedwait(&stopping, nil, &now) < 0 })
        try? source.report("stop", vm: vm, mounts: guarded, deadline: deadline)
        say("stopped after \(guardLoop.counters.allowed) allowed, \(guardLoop.counters.denied) denied, \(guardLoop.counters.hashed) hashed")
    }
}
