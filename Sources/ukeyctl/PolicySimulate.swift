import ArgumentParser
import UkeyVarlink
import UkeyCore
import UkeyPolicy

/// `ukeyctl policy simulate`: walks a policy's boot chain in process, hashing each component's file
/// as the hypervisor would and applying the chain rules, without a daemon. Admins use it to dry-run
/// a new policy against a host's files; the demo uses it to show the rules.
struct PolicySimulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Dry-run a policy's boot chain against the files on this host, in process.",
        discussion: """
            Measures every component by hashing its 'file' (under --root), parents before children unless \
            --order says otherwise, then prints each verdict and the chain. Exit status 0 when every \
            entity ends trusted, 1 otherwise.
            """
    )

    @Argument(help: "The policy file.")
    var file: String

    @Option(help: "A directory that stands in for '/' when resolving component files.")
    var root: String?

    @Option(help: "Comma-separated entity names: the order to measure them in (default: parents first).")
    var order: String?

    @Option(help: "Write the TCG event log of the run to this file.")
    var eventLog: String?

    @Flag(help: "Print only the final chain.")
    var quiet = false

    @OptionGroup var output: JSONOutput

    func run() throws {
        let (policy, expected) = try PolicyFiles.loadForUse(file)
        let names = order.map { $0.split(separator: ",").map(String.init) } ?? expected.entities.map(\.name)
        var boot = MeasuredBoot(expected: expected, bootID: "simulation", banks: policy.algorithms)
        var measured: [JSONValue] = []
        let files = Dictionary(
            policy.entities.flatMap { entity in entity.components.map { ("\(entity.name)/\($0.name)", $0.file) } },
            uniquingKeysWith: { first, _ in first }
        )
        for name in names {
            guard let entity = expected.entity(named: name) else {
                throw InputError("--order names '\(name)', which the policy does not declare")
            }
            for component in entity.components {
                guard let path = files["\(name)/\(component.name)"] ?? nil else {
                    throw InputError("\(name)/\(component.name) has no 'file' to measure")
                }
                let digest: Digest
                do {
                    digest = try FileDigester.digest(
                        ofFileAt: PolicyFiles.resolve(path, root: root),
                        using: component.expected.algorithm
                    )
                } catch {
                    throw InputError("cannot measure \(name)/\(component.name): \(error)")
                }
                let (outcome, _) = try boot.measure(entity: name, component: component.name, digest: digest)
                if output.json {
                    measured.append(
                        .object([
                            "entity": .string(outcome.entity), "component": .string(outcome.component),
                            "digest": .string(outcome.digest.description), "match": .bool(outcome.match),
                            "state": .string(outcome.state.rawValue),
                            "reason": outcome.reason.map { .string($0.rawValue) } ?? .null,
                            "load": .bool(outcome.mayLoad(in: policy.mode)),
                        ])
                    )
                } else if !quiet {
                    print(Self.line(outcome, mode: policy.mode))
                }
            }
        }
        let allTrusted = expected.entities.allSatisfy { boot.chain.state(of: $0.name) == .trusted }
        if output.json {
            output.emit([
                "measurements": .array(measured), "trusted": .bool(allTrusted),
                "chain": .array(
                    expected.entities.map { entity in
                        .object([
                            "entity": .string(entity.name),
                            "state": .string((boot.chain.state(of: entity.name) ?? .pending).rawValue),
                            "reason": boot.chain.status(of: entity.name)?.reason.map { .string($0.rawValue) } ?? .null,
                        ])
                    }
                ),
            ])
        } else {
            if !quiet { print("") }
            print(ChainTree(expected: expected, chain: boot.chain).render())
        }
        if let eventLog {
            try PolicyFiles.write(boot.eventLog.serialized(), to: eventLog)
        }
        if !allTrusted { throw ExitCode.checkFailed }
    }

    /// One measurement as a person reads it: what, the digest, match or not, the state, the decision.
    static func line(_ outcome: MeasurementOutcome, mode: EnforcementMode) -> String {
        let what = "\(outcome.entity)/\(outcome.component)".padding(toLength: 28, withPad: " ", startingAt: 0)
        let digest = Style.dim.apply(String(outcome.digest.description.prefix(19)) + "…")
        let match = outcome.match ? Style.green.apply("match   ") : Style.red.apply("MISMATCH")
        let state: String
        switch outcome.state {
        case .trusted: state = Style.green.apply("trusted")
        case .pending: state = Style.yellow.apply("pending")
        case .untrusted: state = Style.red.apply("untrusted (\(outcome.reason?.rawValue ?? "?"))")
        }
        let load = outcome.mayLoad(in: mode) ? Style.green.apply("load") : Style.red.apply("REFUSE")
        return "  measure \(what) \(digest)  \(match)  \(load)  -> \(state)"
    }
}
