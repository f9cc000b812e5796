import ArgumentParser
import Foundation
import UkeyAPI
import UkeyVarlink

/// `ukeyctl vm status|accept|enroll-vtpm|vtpm-cert`: a VM's writable state as ukeyd sealed it,
/// and its vTPM.
struct VMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm",
        abstract:
            "A VM's writable state (its disk) and its vTPM: what ukeyd sealed at its last stop, accepting a state it did not seal, the vTPM and its EK certificate.",
        subcommands: [VMStatus.self, VMAccept.self, VMEnrollVTPM.self, VMVTPMCertificate.self]
    )
}

/// `ukeyctl vm status [VM] [--no-hash]`.
struct VMStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "Each VM's writable components: the sealed digest, when and by which stop, and whether the file holds it now.",
        discussion:
            "Exit 1 when a file does not hold what its VM's next start needs (that start would be refused as changed-since-stop)."
    )
    @OptionGroup var daemon: DaemonOptions
    @Argument(help: "One VM (default: every VM with writable components).") var vm: String?
    @Flag(help: "Do not hash the files (a quick look: no 'now' column).") var noHash = false

    func run() throws {
        let reply = try daemon.call(Boot.States.self, .init(entity: vm, hash: !noHash))
        let vms = reply.vms
        let changed = vms.contains { $0.components.contains { $0.matches == false || $0.problem != nil } }
        if daemon.printJSON(reply) {
            if changed { throw ExitCode.checkFailed }
            return
        }
        if vms.isEmpty { print("no VM in the policy in force has a writable component") }
        for vm in vms {
            let reason = vm.reason.map { " (\($0))" } ?? ""
            print("\(vm.entity): \(vm.state)\(reason) in this boot")
            for c in vm.components {
                print("  \(c.component)  \(c.path ?? "(no file known)")")
                if let sealed = c.sealed {
                    let who = c.uid.map { " by uid \($0)" } ?? ""
                    print(
                        "    sealed   \(sealed)  at its \(c.by ?? "?")\(who), \(c.sealedAt ?? "?"), boot \(c.boot ?? "?")"
                    )
                } else {
                    print("    sealed   never; the next start needs the policy's first state")
                }
                if c.expected != c.sealed {
                    print("    expected \(c.expected)")
                }
                if let current = c.current {
                    let verdict =
                        c.matches == true
                        ? Style.green.apply("matches")
                        : Style.red.apply("CHANGED since its stop: the next start is refused (ukeyctl vm accept)")
                    print("    now      \(current)  \(verdict)")
                } else if let problem = c.problem {
                    print("    now      \(Style.red.apply("cannot hash: \(problem)"))")
                }
            }
        }
        if changed { throw ExitCode.checkFailed }
    }
}

/// `ukeyctl vm accept VM [--component C] [--path P]`.
struct VMAccept: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accept",
        abstract:
            "Seal a stopped VM's writable state as it is now (admin): after a stop ukeyd did not hear of (power loss), or a change made on purpose.",
        discussion:
            "ukeyd hashes the file and seals its digest, audited with the old and new digests and your uid; a VM refused as changed-since-stop in this boot may then start. A running VM is refused: its state is sealed when it stops."
    )
    @OptionGroup var daemon: DaemonOptions
    @Argument(help: "The VM.") var vm: String
    @Option(help: "One writable component (default: all of the VM's).") var component: String?
    @Option(help: "The file to hash (default: the one last measured for it, else its seal's, else the policy's).")
    var path: String?

    func run() throws {
        let reply = try daemon.call(Boot.AcceptState.self, .init(entity: vm, component: component, path: path))
        if daemon.printJSON(reply) { return }
        for sealed in reply.sealed {
            print("\(vm)/\(sealed.component): accepted \(sealed.digest) (was \(sealed.previous))")
        }
        if !reply.released.isEmpty {
            print(
                "released \(reply.released.joined(separator: ", ")): the next start is judged against the accepted state"
            )
        }
    }
}
