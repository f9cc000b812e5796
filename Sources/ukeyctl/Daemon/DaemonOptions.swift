import ArgumentParser
import Foundation
import UkeyAPI
import UkeyClient
import UkeyVarlink
#if canImport(Glibc)
import Glibc
#endif

/// What every command that talks to ukeyd shares: where the socket is, and JSON output.
struct DaemonOptions: ParsableArguments {
    @Option(help: "ukeyd's socket (default: $UKEY_SOCKET, else /run/ukey/ukeyd.sock).")
    var socket: String?

    /// --json, here or before the subcommand (`JSONOutput`, shared with the offline commands).
    @OptionGroup var output: JSONOutput

    var json: Bool { output.json }

    var socketPath: String {
        socket ?? ProcessInfo.processInfo.environment["UKEY_SOCKET"] ?? "/run/ukey/ukeyd.sock"
    }

    /// Calls a ukey method. An error reply exits 1 with its name and reason; an unreachable
    /// daemon exits 3.
    func call<M: APIMethod>(_ method: M.Type, _ request: M.Request) throws -> M.Reply {
        let connection: VarlinkConnection
        do {
            connection = try VarlinkConnection(path: socketPath)
        } catch {
            FileHandleOutput.standardError("ukeyctl: \(error)")
            throw ExitCode.unreachable
        }
        do {
            return try connection.call(method, request)
        } catch let error as APIError {
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

    /// Calls a ukey method that takes no parameters.
    func call<M: APIMethod>(_ method: M.Type) throws -> M.Reply where M.Request == Empty {
        try call(method, Empty())
    }

    /// Prints `reply` as JSON when --json was given; returns whether it did.
    func printJSON<Reply: Encodable>(_ reply: Reply) -> Bool {
        guard json else { return false }
        print(Self.jsonText(.object(JSONValueEncoder.encode(reply))))
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
    static func explain(_ error: APIError) -> String {
        switch error {
        case .badPIN(let left): "wrong PIN; \(left) tries left"
        case .pinLocked: "the PIN is locked; an administrator can unblock it with the SO PIN"
        case .notInitialized: "the token is not initialised; run 'ukeyctl init' first"
        case .permissionDenied: "permission denied: your user does not hold the role this call needs"
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
