import ArgumentParser
import Foundation
import UkeyCore
import UkeyToken
import UkeyAPI
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
        let reply = try daemon.call(
            Boot.Measure.self,
            .init(entity: entity, component: component, digest: digest, path: path, session: session)
        )
        if !daemon.printJSON(reply) {
            let reason = reply.reason.map { " (\($0))" } ?? ""
            print(
                "\(entity)/\(component): \(reply.verdict)\(reason), match \(reply.match ? "yes" : "no"), \(reply.load ? Style.green.apply("load") : Style.red.apply("REFUSE"))"
            )
        }
        if !reply.load { throw ExitCode.checkFailed }
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
        let reply = try daemon.call(Boot.Chain.self)
        if daemon.printJSON(reply) { return }
        print("boot \(reply.bootID), mode \(reply.mode)\n")
        let nodes = reply.entities.compactMap { entity -> ChainTree.Node? in
            guard let state = EntityState(rawValue: entity.state) else { return nil }
            return ChainTree.Node(
                name: entity.name,
                parent: entity.parent,
                kind: entity.kind,
                register: entity.register,
                detail: ChainTree.badge(state: state, reason: entity.reason, matched: entity.measured.count)
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
        let reply = try daemon.call(Boot.Quote.self, .init(nonce: bytes, bank: bank))
        if let out {
            try PolicyFiles.write(reply.quote.bytes, to: out + "/quote.bin")
            try PolicyFiles.write(reply.signature.bytes, to: out + "/quote.sig")
            // The attestation key's certificate followed by its issuer, the token-keys sub-CA: the
            // bundle `quote verify --cert` and `openssl verify -untrusted` read.
            try PolicyFiles.write(Array((reply.certificate + reply.chain).utf8), to: out + "/attestation.pem")
        }
        if daemon.printJSON(reply) { return }
        print(
            "quote (\(reply.format), \(bank ?? "sha256") bank) signed \(reply.algorithm) by the attestation key"
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
        let reply = try daemon.call(Boot.EventLog.self)
        let data = reply.data.bytes
        try PolicyFiles.write(data, to: out)
        if daemon.printJSON(["format": JSONValue.string(reply.format), "bytes": .int(data.count)]) { return }
        print("wrote \(out) (\(data.count) bytes, \(reply.format))")
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
        let reply = try daemon.call(Boot.Reset.self)
        if daemon.printJSON(reply) { return }
        print("new boot \(reply.bootID)")
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
        let reply = try daemon.call(Auth.Login.self, .init(user: user, pin: pin, forVm: forVm))
        if daemon.printJSON(reply) { return }
        print((forVm == nil ? reply.session : reply.ticket) ?? "")
    }
}
