import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// `ukeyctl`: provisions and inspects a Ukey. The policy commands work offline, on files.
@main
struct UkeyCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ukeyctl",
        abstract: "Provision and inspect ukey, the trusted root of a KVM host.",
        discussion: """
            Exit status: 0 success, 1 denied or a check failed (lint problems, an untrusted chain, an \
            error reply), 2 bad usage or unreadable input, 3 ukeyd unreachable.
            """,
        version: "0.1.0",
        subcommands: [
            InitCommand.self, StatusCommand.self, PolicyCommand.self, UserCommand.self, LoginCommand.self,
            MeasureCommand.self, MeasureHostCommand.self, ChainCommand.self, QuoteCommand.self, EventLogCommand.self,
            CertCommand.self,
            ExecCheckCommand.self, ModeCommand.self, ResetCommand.self, VMCommand.self, AuditCommand.self,
            KeygenCommand.self, CardCommand.self,
        ]
    )

    /// Maps argument-parser's usage errors to exit 2, which scripts (and the libvirt hook) read as
    /// "called wrongly", distinct from 1, "the check said no".
    static func main() async {
        do {
            var command = try parseAsRoot(leadingGlobalOptions(Array(CommandLine.arguments.dropFirst())))
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch let error as InputError {
            FileHandleOutput.standardError("ukeyctl: \(error)")
            Glibc.exit(ExitCode.usage.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandleOutput.standardError(fullMessage(for: error))
                Glibc.exit(ExitCode.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}

extension UkeyCtl {
    /// `--socket PATH` and `--json` given before the subcommand, as after it (systemctl's and
    /// virsh's habit): taken off the front and passed on through the environment the commands
    /// already read ($UKEY_SOCKET, $UKEY_JSON). A --socket after the subcommand still wins.
    static func leadingGlobalOptions(_ arguments: [String]) -> [String] {
        var rest = arguments[...]
        while let first = rest.first {
            if first == "--json" {
                setenv("UKEY_JSON", "1", 1)
                rest = rest.dropFirst()
            } else if first == "--socket", rest.count >= 2 {
                setenv("UKEY_SOCKET", rest[rest.startIndex + 1], 1)
                rest = rest.dropFirst(2)
            } else if first.hasPrefix("--socket=") {
                setenv("UKEY_SOCKET", String(first.dropFirst("--socket=".count)), 1)
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        return Array(rest)
    }
}

extension ExitCode {
    /// A check ran and failed.
    static let checkFailed = ExitCode(1)
    /// Wrong arguments or input that cannot be read.
    static let usage = ExitCode(2)
}

/// Input that cannot be used (a missing file, a bad option value): exit 2 with the reason alone,
/// not the usage text, since the command line itself was well formed.
struct InputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
