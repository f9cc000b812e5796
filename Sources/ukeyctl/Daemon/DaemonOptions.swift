import ArgumentParser
import Foundation
import UkeyClient
import UkeyVarlink
#if canImport(Glibc)
import Glibc
#endif

/// What every command that talks to ukeyd shares: where the socket is, and JSON output.
struct DaemonOptions: ParsableArguments {
    @Option(help: "ukeyd's socket (default: $UKEY_SOCKET, else /run/ukey/ukeyd.sock).")
    var socket: String?

    @Flag(help: "Print the daemon's reply as JSON.")
    var json = false

    var socketPath: String {
        socket ?? ProcessInfo.processInfo.environment["UKEY_SOCKET"] ?? "/run/ukey/ukeyd.sock"
    }

    /// Calls ukeyd. An error reply exits 1 with its name and reason; an unreachable daemon exits 3.
    func call(_ method: String, _ parameters: [String: JSONValue] = [:]) throws -> [String: JSONValue] {
        let connection: VarlinkConnection
        do {
            connection = try VarlinkConnection(path: socketPath)
        } catch {
            FileHandleOutput.standardError("ukeyctl: \(error)")
            throw ExitCode.unreachable
        }
        do {
            return try connection.call(method, parameters)
        } catch let error as VarlinkError {
            if json {
                print(Self.jsonText(["error": .string(error.name), "parameters": .object(error.parameters)]))
            } else {
                FileHandleOutput.standardError("ukeyctl: \(Self.explain(error))")
            }
            throw ExitCode.checkFailed
        } catch {
            FileHandleOutput.standardError("ukeyctl: \(error)")
            throw ExitCode.unreachable
        }
    }

    /// Prints `reply` as JSON when --json was given; returns whether it did.
    func printJSON(_ reply: [String: JSONValue]) -> Bool {
        guard json else { return false }
        print(Self.jsonText(.object(reply)))
        return true
    }

    static func jsonText(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }

    static func compactJSON(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }

    /// An error reply as a sentence.
    static func explain(_ error: VarlinkError) -> String {
        switch error.name {
        case "io.ukey.Auth.BadPin": "wrong PIN; \(error.parameters["retriesLeft"]?.intValue ?? 0) tries left"
        case "io.ukey.Auth.PinLocked": "the PIN is locked; an administrator can unblock it with the SO PIN"
        case "io.ukey.Admin.NotInitialized": "the token is not initialised; run 'ukeyctl init' first"
        case "org.varlink.service.PermissionDenied":
            "permission denied: your user does not hold the role this call needs"
        default: error.description
        }
    }
}

extension ExitCode {
    /// ukeyd could not be reached.
    static let unreachable = ExitCode(3)
}

extension JSONValue {
    /// A short text form for human output.
    var text: String {
        switch self {
        case .string(let s): s
        case .int(let i): "\(i)"
        case .double(let d): "\(d)"
        case .bool(let b): b ? "yes" : "no"
        case .null: "-"
        case .array(let items): items.map(\.text).joined(separator: ", ")
        case .object: DaemonOptions.jsonText(self)
        }
    }
}
