import ArgumentParser
import UkeyPolicy
import UkeyVarlink

/// `ukeyctl policy lint FILE...`: one `file:line:col: message` line per problem.
struct PolicyLint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Check policy files; print one 'file:line:col: message' line per problem.",
        discussion: "Exit status 0 when every file is clean, 1 when any has a problem, 2 when a file cannot be read."
    )

    @Flag(help: "Accept components that have a file but no digest yet (a draft for 'policy enroll').")
    var draft = false

    @Argument(help: "Policy files (YAML).")
    var files: [String]

    @OptionGroup var output: JSONOutput

    func run() throws {
        var clean = true
        var results: [JSONValue] = []
        for file in files {
            let problems: [PolicyDiagnostic]
            do {
                let policy = try PolicyParser.parse(bytes: PolicyFiles.read(file), file: file)
                problems = PolicyLinter.lint(policy, options: .init(requireDigests: !draft))
            } catch let error as PolicyError {
                problems = error.diagnostics
            }
            if output.json {
                results.append(
                    .object([
                        "file": .string(file),
                        "problems": .array(
                            problems.map {
                                .object([
                                    "line": .int($0.location.line), "column": .int($0.location.column),
                                    "message": .string($0.message),
                                ])
                            }
                        ),
                    ])
                )
            } else {
                for problem in problems { print(problem) }
            }
            clean = clean && problems.isEmpty
        }
        if output.json { output.emit(["clean": .bool(clean), "files": .array(results)]) }
        if !clean { throw ExitCode.checkFailed }
    }
}
