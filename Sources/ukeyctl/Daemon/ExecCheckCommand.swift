import ArgumentParser
import UkeyAPI
import UkeyVarlink

/// `ukeyctl exec-check VM PATH --digest D`: asks the run-time whitelist, as an in-VM agent would.
struct ExecCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-check",
        abstract: "Ask whether an executable may run in a VM; exit 0 allow, 1 deny."
    )
    @OptionGroup var daemon: DaemonOptions
    @Argument var vm: String
    @Argument var path: String
    @Option(help: "The executable's digest, 'sha256:<hex>'.") var digest: String

    func run() throws {
        let reply = try daemon.call(Runtime.CheckExec.self, .init(vm: vm, path: path, digest: digest))
        let allowed = reply.decision == "allow"
        if !daemon.printJSON(reply) {
            let reason = reply.reason.map { " (\($0))" } ?? ""
            print("\(vm): \(path): \(allowed ? Style.green.apply("allow") : Style.red.apply("deny"))\(reason)")
        }
        if !allowed { throw ExitCode.checkFailed }
    }
}
