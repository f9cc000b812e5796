import ArgumentParser

/// `ukeyctl policy ...`: work on policy files without a daemon.
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check, enrol, show and dry-run policy files (offline); sign and load them.",
        subcommands: [
            PolicyLint.self, PolicyEnroll.self, PolicyEnrollDomain.self, PolicyShow.self, PolicySimulate.self,
            PolicyDiffCommand.self, PolicySign.self, PolicyLoad.self, PolicyExport.self,
        ]
    )
}
