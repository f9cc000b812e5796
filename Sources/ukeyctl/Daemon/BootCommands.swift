import ArgumentParser
import Foundation
import UkeyCore
import UkeyToken
import UkeyVarlink

/// `ukeyctl measure ENTITY COMPONENT`: what the hypervisor calls before it loads something.
struct MeasureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure",
        abstract: "Measure a component before it is loaded; exit 0 when it may load, 1 when it must not."
    )
    @OptionGroup var daemon: DaemonOptions
    @Argument var entity: String
    @Argument var component: String
    @Option(help: "The digest, 'sha256:<hex>'.") var digest: String?
    @Option(help: "A file for ukeyd to hash.") var path: String?
    @Option(help: "A login session (starting a user VM needs one).") var session: String?

    func validate() throws {
        if digest != nil && path != nil { throw ValidationError("give --digest or --path, not both") }
    }

    func run() throws {
        var parameters: [String: JSONValue] = ["entity": .string(entity), "component": .string(component)]
        if let digest { parameters["digest"] = .string(digest) }
        if let path { parameters["path"] = .string(path) }
        if let session { parameters["session"] = .string(session) }
        let reply = try daemon.call("io.ukey.Boot.Measure", parameters)
        let load = reply["load"]?.boolValue ?? false
        if !daemon.printJSON(reply) {
            let reason = reply["reason"].flatMap { $0 == .null ? nil : $0.text }.map { " (\($0))" } ?? ""
            let verdict = reply["verdict"]?.text ?? "?"
            print(
                "\(entity)/\(component): \(verdict)\(reason), match \(reply["match"]?.text ?? "?"), \(load ? Style.green.apply("load") : Style.red.apply("REFUSE"))"
            )
        }
        if !load { throw ExitCode.checkFailed }
    }
}

/// `ukeyctl chain`: the boot chain as a tree.
struct ChainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chain",
        abstract: "Show this boot's chain as a tree, states at a glance."
    )
    @OptionGroup var daemon: DaemonOptions

    func run() throws {
        let reply = try daemon.call("io.ukey.Boot.Chain")
        if daemon.printJSON(reply) { return }
        print("boot \(reply["bootId"]?.text ?? "?"), mode \(reply["mode"]?.text ?? "?")\n")
        let nodes = (reply["entities"]?.arrayValue ?? []).compactMap { value -> ChainTree.Node? in
            guard let name = value["name"]?.stringValue, let parent = value["parent"]?.stringValue,
                let state = value["state"]?.stringValue.flatMap(EntityState.init(rawValue:))
            else { return nil }
            let reason = value["reason"]?.stringValue
            return ChainTree.Node(
                name: name,
                parent: parent,
                kind: value["kind"]?.stringValue ?? "?",
                register: value["register"]?.intValue ?? 0,
                detail: ChainTree.badge(state: state, reason: reason, matched: value["measured"]?.objectValue?.count)
            )
        }
        print(ChainTree(nodes: nodes).render())
    }
}

/// `ukeyctl quote get --nonce HEX [--bank sm3] [--out DIR]`.
struct QuoteGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Ask ukeyd for a signed quote of the registers."
    )
    @OptionGroup var daemon: DaemonOptions
    @Option(help: "The nonce, hex.") var nonce: String
    @Option(help: "The register bank to quote: sha256 (default), or sm3 where the registers have an SM3 bank.")
    var bank: String?
    @Option(help: "Write quote.bin, quote.sig and attestation.pem (the key's certificate, then its sub-CA's) here.")
    var out: String?

    func run() throws {
        guard let bytes = Hex.decode(nonce), !bytes.isEmpty else { throw InputError("--nonce must be hex") }
        var parameters: [String: JSONValue] = ["nonce": .string(Data(bytes).base64EncodedString())]
        if let bank { parameters["bank"] = .string(bank) }
        let reply = try daemon.call("io.ukey.Boot.Quote", parameters)
        if let out {
            guard let quote = Data(base64Encoded: reply["quote"]?.stringValue ?? ""),
                let signature = Data(base64Encoded: reply["signature"]?.stringValue ?? "")
            else { throw InputError("ukeyd sent a quote that is not base64") }
            try PolicyFiles.write(Array(quote), to: out + "/quote.bin")
            try PolicyFiles.write(Array(signature), to: out + "/quote.sig")
            // The attestation key's certificate followed by its issuer, the token-keys sub-CA: the
            // bundle `quote verify --cert` and `openssl verify -untrusted` read.
            let bundle = (reply["certificate"]?.stringValue ?? "") + (reply["chain"]?.stringValue ?? "")
            try PolicyFiles.write(Array(bundle.utf8), to: out + "/attestation.pem")
        }
        if daemon.printJSON(reply) { return }
        print(
            "quote (\(reply["format"]?.text ?? "?"), \(bank ?? "sha256") bank) signed \(reply["algorithm"]?.text ?? "?") by the attestation key"
                + (out.map { "; written to \($0)" } ?? "")
        )
    }
}

/// `ukeyctl eventlog --out FILE`.
struct EventLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eventlog",
        abstract: "Save this boot's TCG event log (tpm2_eventlog reads it)."
    )
    @OptionGroup var daemon: DaemonOptions
    @Option var out: String

    func run() throws {
        let reply = try daemon.call("io.ukey.Boot.EventLog")
        guard let data = Data(base64Encoded: reply["data"]?.stringValue ?? "") else {
            throw InputError("ukeyd sent an event log that is not base64")
        }
        try PolicyFiles.write(Array(data), to: out)
        if daemon.printJSON(["format": reply["format"] ?? .null, "bytes": .int(data.count)]) { return }
        print("wrote \(out) (\(data.count) bytes, \(reply["format"]?.text ?? "?"))")
    }
}

/// `ukeyctl reset`: a new boot session.
struct ResetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Start a new boot session: registers zeroed, chain reset."
    )
    @OptionGroup var daemon: DaemonOptions

    func run() throws {
        let reply = try daemon.call("io.ukey.Boot.Reset")
        if daemon.printJSON(reply) { return }
        print("new boot \(reply["bootId"]?.text ?? "?")")
    }
}

/// `ukeyctl login USER --pin P [--for-vm VM]`.
struct LoginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Log a user in; prints the session, or with --for-vm a one-time ticket to start that VM.",
        discussion: """
            A session serves only your uid (Token.Sign, Logout). To start a user VM, put a start \
            ticket in the domain (<ukey:entity session="TICKET">) or in UKEY_SESSION for ukey-qemu: \
            anyone may read a domain's XML, and a ticket serves one start of the VM it names.
            """
    )
    @OptionGroup var daemon: DaemonOptions
    @Argument var user: String
    @Option var pin: String
    @Option(
        name: .customLong("for-vm"),
        help: "The user VM to start: print a one-time start ticket for it instead of a session."
    )
    var forVm: String?

    func run() throws {
        var parameters: [String: JSONValue] = ["user": .string(user), "pin": .string(pin)]
        if let forVm { parameters["forVm"] = .string(forVm) }
        let reply = try daemon.call("io.ukey.Auth.Login", parameters)
        if daemon.printJSON(reply) { return }
        print(reply[forVm == nil ? "session" : "ticket"]?.text ?? "")
    }
}
