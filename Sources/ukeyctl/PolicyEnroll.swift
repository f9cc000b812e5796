import ArgumentParser
import UkeyCore
import UkeyPolicy
import UkeyVarlink

/// `ukeyctl policy enroll FILE -o OUT`: compute each component's digest from its file.
struct PolicyEnroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Fill each component's digest by hashing its 'file', keeping the rest of the text as it is.",
        discussion: "Run it on a host in a known-good state; review the result ('policy show'), then sign it."
    )

    @Argument(help: "The policy to enrol.")
    var file: String

    @Option(name: .shortAndLong, help: "Where to write the enrolled policy ('-' for standard output).")
    var output: String

    @Option(help: "A directory that stands in for '/' when resolving component files.")
    var root: String?

    @Option(help: "The digest algorithm: sha256, sha384, sha512 or sm3.")
    var algorithm: HashAlgorithm = .sha256

    @OptionGroup var jsonOutput: JSONOutput

    func run() throws {
        let text = String(decoding: try PolicyFiles.read(file), as: UTF8.self)
        let result: (text: String, changes: [PolicyEnroller.Change])
        do {
            result = try PolicyEnroller.enroll(text, file: file) { path in
                let resolved = PolicyFiles.resolve(path, root: root)
                return try ProgressLine.around(hashing: resolved) { progress in
                    try FileDigester.digest(ofFileAt: resolved, using: algorithm, progress: progress)
                }
            }
        } catch let error as PolicyError {
            for diagnostic in error.diagnostics { print(diagnostic) }
            throw ExitCode.checkFailed
        } catch let error as FileDigester.Failure {
            throw InputError("cannot hash \(error)")
        }
        if output == "-", !jsonOutput.json {
            print(result.text, terminator: result.text.hasSuffix("\n") ? "" : "\n")
        } else if output != "-" {
            try PolicyFiles.write(Array(result.text.utf8), to: output)
        }
        if jsonOutput.json {
            jsonOutput.emit([
                "output": .string(output), "text": output == "-" ? .string(result.text) : .null,
                "changes": .array(
                    result.changes.map {
                        .object([
                            "entity": .string($0.entity), "component": .string($0.component), "file": .string($0.file),
                            "digest": .string($0.new.description),
                            "previous": $0.old.map { .string($0.description) } ?? .null,
                        ])
                    }
                ),
            ])
            return
        }
        for change in result.changes {
            let note = change.old == nil ? "new" : (change.old == change.new ? "unchanged" : "CHANGED")
            FileHandleOutput.standardError(
                "\(change.entity)/\(change.component): \(change.new) (\(note)) from \(change.file)"
            )
        }
    }
}
