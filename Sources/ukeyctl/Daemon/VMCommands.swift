import ArgumentParser
import Foundation
import UkeyVarlink

/// `ukeyctl vm status|accept`: a VM's writable state as ukeyd sealed it.
struct VMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm",
        abstract:
            "A VM's writable state (its disk): what ukeyd sealed at its last stop, and accepting a state it did not seal.",
        subcommands: [VMStatus.self, VMAccept.self]
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
        var parameters: [String: JSONValue] = ["hash": .bool(!noHash)]
        if let vm { parameters["entity"] = .string(vm) }
        let reply = try daemon.call("io.ukey.Boot.States", parameters)
        let vms = reply["vms"]?.arrayValue ?? []
        let changed = vms.contains {
            ($0["components"]?.arrayValue ?? []).contains {
                $0["matches"]?.boolValue == false || $0["problem"]?.stringValue != nil
            }
        }
        if daemon.printJSON(reply) {
            if changed { throw ExitCode.checkFailed }
            return
        }
        if vms.isEmpty { print("no VM in the policy in force has a writable component") }
        for vm in vms {
            let reason = vm["reason"]?.stringValue.map { " (\($0))" } ?? ""
            print("\(vm["entity"]?.text ?? "?"): \(vm["state"]?.text ?? "?")\(reason) in this boot")
            for c in vm["components"]?.arrayValue ?? [] {
                print("  \(c["component"]?.text ?? "?")  \(c["path"]?.stringValue ?? "(no file known)")")
                if let sealed = c["sealed"]?.stringValue {
                    let who = c["uid"]?.intValue.map { " by uid \($0)" } ?? ""
                    print(
                        "    sealed   \(sealed)  at its \(c["by"]?.text ?? "?")\(who), \(c["sealedAt"]?.text ?? "?"), boot \(c["boot"]?.text ?? "?")"
                    )
                } else {
                    print("    sealed   never; the next start needs the policy's first state")
                }
                if c["expected"]?.stringValue != c["sealed"]?.stringValue {
                    print("    expected \(c["expected"]?.text ?? "?")")
                }
                if let current = c["current"]?.stringValue {
                    let verdict =
                        c["matches"]?.boolValue == true
                        ? Style.green.apply("matches")
                        : Style.red.apply("CHANGED since its stop: the next start is refused (ukeyctl vm accept)")
                    print("    now      \(current)  \(verdict)")
                } else if let problem = c["problem"]?.stringValue {
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
        var parameters: [String: JSONValue] = ["entity": .string(vm)]
        if let component { parameters["component"] = .string(component) }
        if let path { parameters["path"] = .string(path) }
        let reply = try daemon.call("io.ukey.Boot.AcceptState", parameters)
        if daemon.printJSON(reply) { return }
        for sealed in reply["sealed"]?.arrayValue ?? [] {
            print(
                "\(vm)/\(sealed["component"]?.text ?? "?"): accepted \(sealed["digest"]?.text ?? "?") (was \(sealed["previous"]?.text ?? "?"))"
            )
        }
        if let released = reply["released"]?.arrayValue, !released.isEmpty {
            print(
                "released \(released.compactMap(\.stringValue).joined(separator: ", ")): the next start is judged against the accepted state"
            )
        }
    }
}
