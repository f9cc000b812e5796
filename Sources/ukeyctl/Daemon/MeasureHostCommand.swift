import ArgumentParser
import Foundation
import UkeyAPI
import UkeyVarlink

/// `ukeyctl measure-host`: the host's own boot measurement, run before libvirt starts
/// (`systemd/ukey-measure-host.service`). It measures every component of the policy's VMM entity
/// from the files the policy names (ukeyd hashes them: the running kernel and its initrd, the qemu
/// binary, the firmware, libvirtd), and exits non-zero when the VMM must not load, when a file
/// cannot be hashed, or when ukeyd cannot be reached: libvirt never starts on a host ukey did not
/// vouch for.
struct MeasureHostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure-host",
        abstract:
            "Measure the host's hypervisor stack (the policy's VMM entity) from the policy's files; exit 1 when it must not load.",
        discussion:
            "Exit status: 0 the VMM may load, 1 it must not (or a component could not be measured), 3 ukeyd unreachable."
    )
    @OptionGroup var daemon: DaemonOptions
    @Option(help: "The policy's entity for the host's hypervisor stack.") var entity = "vmm"

    func run() throws {
        let chain = try daemon.call(Boot.Chain.self)
        guard let node = chain.entities.first(where: { $0.name == entity }) else {
            FileHandleOutput.standardError(
                "ukeyctl measure-host: the policy in force has no entity '\(entity)'; nothing vouches for this host"
            )
            throw ExitCode.checkFailed
        }
        let components = node.components
        guard !components.isEmpty else {
            FileHandleOutput.standardError("ukeyctl measure-host: the policy names no components for '\(entity)'")
            throw ExitCode.checkFailed
        }
        var refused: [String] = []
        var results: [JSONValue] = []
        for component in components {
            let reply = try daemon.call(Boot.Measure.self, .init(entity: entity, component: component))
            results.append(
                .object(reply.wire.merging(["component": .string(component)]) { a, _ in a })
            )
            let said = "\(entity)/\(component): \(reply.verdict)\(reply.reason.map { " (\($0))" } ?? "")"
            if !reply.load { refused.append(said) }
            if !daemon.json {
                print("\(said), \(reply.load ? Style.green.apply("load") : Style.red.apply("REFUSE"))")
            }
        }
        let summary: [String: JSONValue] = [
            "entity": .string(entity), "results": .array(results), "load": .bool(refused.isEmpty),
        ]
        _ = daemon.printJSON(summary)
        guard refused.isEmpty else {
            FileHandleOutput.standardError(
                "ukeyctl measure-host: this host's \(entity) must not load: \(refused.joined(separator: "; "))"
            )
            throw ExitCode.checkFailed
        }
        if !daemon.json { print("\(entity): may load; the hypervisor stack may start") }
    }
}
