import UkeyCodec
import ArgumentParser
import Crypto
import Foundation
import UkeySM
import UkeyCore
import UkeyVarlink

/// `ukeyctl init`: creates the token (once).
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Initialise the token: root CA, attestation and audit keys, SO PIN, policy signer."
    )
    @OptionGroup var daemon: DaemonOptions
    @Option(help: "The SO PIN (PUK), 8-64 characters; it unblocks user PINs.")
    var soPin: String
    @Option(help: "The policy signer's PEM certificate (see 'ukeyctl keygen').")
    var policySigner: String

    func run() throws {
        let pem = String(decoding: try PolicyFiles.read(policySigner), as: UTF8.self)
        let reply = try daemon.call(
            "io.ukey.Admin.Initialize",
            ["soPin": .string(soPin), "policySigner": .string(pem)]
        )
        if daemon.printJSON(reply) { return }
        print("token initialised; its root CA certificate:")
        print(reply["rootCertificate"]?.text ?? "")
    }
}

/// `ukeyctl status`.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the daemon's state.")
    @OptionGroup var daemon: DaemonOptions

    func run() throws {
        let reply = try daemon.call("io.ukey.Admin.Status")
        if daemon.printJSON(reply) { return }
        func line(_ key: String, _ value: String) {
            print("\(key.padding(toLength: 14, withPad: " ", startingAt: 0)) \(value)")
        }
        for key in ["initialized", "backend"] { line(key, reply[key]?.text ?? "-") }
        // Which backend serves each role: the registers may be a TPM's PCRs while users stay soft.
        if let roles = reply["roles"]?.objectValue {
            for role in ["registers", "keys", "users", "store"] { line("  \(role)", roles[role]?.text ?? "-") }
        }
        for key in ["policyVersion", "mode", "bootId", "users", "entities", "measurements", "measurementBatches"] {
            line(key, reply[key]?.text ?? "-")
        }
        // A lost guard first: while none runs, the kernel lets every exec through.
        let guards = (reply["guards"]?.arrayValue ?? []).compactMap(\.objectValue)
        line("guards", guards.isEmpty ? "none heard from" : "\(guards.count)")
        for item in guards.sorted(by: { ($0["state"]?.text == "lost" ? 0 : 1) < ($1["state"]?.text == "lost" ? 0 : 1) })
        {
            let who =
                "\(item["vm"]?.text ?? "?") via \(item["via"]?.text ?? "?")"
                + (item["pid"].map { " (pid \($0.text))" } ?? "")
            let state = (item["state"]?.text ?? "?").uppercased() == "LOST" ? "LOST" : item["state"]?.text ?? "?"
            line(
                "  \(who)",
                "\(state) since \(item["since"]?.text ?? "?")" + (item["reason"].map { ": \($0.text)" } ?? "")
            )
        }
    }
}

/// `ukeyctl user add|unblock`.
struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Add users and unblock their PINs.",
        subcommands: [UserAdd.self, UserUnblock.self]
    )
}

struct UserAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a user with a PIN; prints the identity certificate."
    )
    @OptionGroup var daemon: DaemonOptions
    @Argument var name: String
    @Option(help: "The user's PIN, 6-64 characters.") var pin: String
    @Option(help: "Comma-separated roles.") var roles = ""

    func run() throws {
        let roleList = roles.split(separator: ",").map { JSONValue.string(String($0)) }
        let reply = try daemon.call(
            "io.ukey.Admin.AddUser",
            ["user": .string(name), "pin": .string(pin), "roles": .array(roleList)]
        )
        if daemon.printJSON(reply) { return }
        print(reply["certificate"]?.text ?? "")
    }
}

struct UserUnblock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unblock",
        abstract: "Give a user a new PIN, authorised by the SO PIN."
    )
    @OptionGroup var daemon: DaemonOptions
    @Argument var name: String
    @Option var soPin: String
    @Option var newPin: String

    func run() throws {
        let reply = try daemon.call(
            "io.ukey.Admin.UnblockPin",
            ["user": .string(name), "soPin": .string(soPin), "newPin": .string(newPin)]
        )
        if daemon.printJSON(reply) { return }
        print("PIN of \(name) unblocked")
    }
}

/// `ukeyctl mode enforce|audit`.
struct ModeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mode", abstract: "Set enforce or audit mode.")
    @OptionGroup var daemon: DaemonOptions
    @Argument var mode: EnforcementMode

    func run() throws {
        let reply = try daemon.call("io.ukey.Admin.SetMode", ["mode": .string(mode.rawValue)])
        if daemon.printJSON(reply) { return }
        print("mode: \(reply["mode"]?.text ?? "?")")
    }
}

extension EnforcementMode: ExpressibleByArgument {}

/// `ukeyctl cert NAME`.
struct CertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "Print a certificate: root-ca, attestation, audit, policy-signer, or a user's."
    )
    @OptionGroup var daemon: DaemonOptions
    @Argument var name: String

    func run() throws {
        let reply = try daemon.call("io.ukey.Token.Certificate", ["name": .string(name)])
        if daemon.printJSON(reply) { return }
        print(reply["pem"]?.text ?? "", terminator: "")
    }
}

/// `ukeyctl policy sign FILE --key KEY`: the openssl-compatible detached signature.
struct PolicySign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract:
            "Sign a policy with the policy-signer key: writes FILE.sig (DER ECDSA, as 'openssl dgst -sha256 -sign' does; or DER SM2 with SM3 and the ID 1234567812345678, as 'openssl dgst -sm3 -sign KEY -sigopt distid:1234567812345678' does, for an SM2 key)."
    )
    @Argument var file: String
    @Option(help: "The signer's PEM private key.") var key: String

    func run() throws {
        let pem = String(decoding: try PolicyFiles.read(key), as: UTF8.self)
        let text = try PolicyFiles.read(file)
        let signature: [UInt8]
        // SM2 first: swift-crypto's P-256 reader takes an SM2 key's scalar as a P-256 one (it
        // does not check the curve), and would sign with the wrong algorithm.
        if let signer = try? SM2PrivateKey(pemRepresentation: pem) {
            signature = try signer.signature(for: text)
        } else if let signer = try? P256.Signing.PrivateKey(pemRepresentation: PEMText.firstBlock(of: pem)) {
            signature = Array(try signer.signature(for: SHA256.hash(data: text)).derRepresentation)
        } else {
            throw InputError("\(key) is not a PEM P-256 or SM2 private key")
        }
        try PolicyFiles.write(signature, to: file + ".sig", mode: 0o644)
        print("wrote \(file).sig")
    }
}

/// `ukeyctl policy load FILE [--signature SIG]`.
struct PolicyLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load a signed policy into ukeyd (refused: the old one stays in force)."
    )
    @OptionGroup var daemon: DaemonOptions
    @Argument var file: String
    @Option(help: "The detached signature (default FILE.sig).") var signature: String?

    func run() throws {
        let text = String(decoding: try PolicyFiles.read(file), as: UTF8.self)
        let sig = try PolicyFiles.read(signature ?? file + ".sig")
        let reply = try daemon.call(
            "io.ukey.Admin.LoadPolicy",
            ["policy": .string(text), "signature": .string(Data(sig).base64EncodedString())]
        )
        if daemon.printJSON(reply) { return }
        print("policy version \(reply["version"]?.text ?? "?") in force")
    }
}
