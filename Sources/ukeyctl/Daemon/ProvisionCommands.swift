import UkeyCodec
import ArgumentParser
import UkeyPolicy
import Crypto
import Foundation
import UkeySM
import UkeyCore
import UkeyAPI
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
        let reply = try daemon.call(Admin.Initialize.self, .init(soPIN: soPin, policySigner: pem))
        if daemon.printJSON(reply) { return }
        print("token initialised; its root CA certificate:")
        print(reply.rootCertificate)
    }
}

/// `ukeyctl status`.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the daemon's state.")
    @OptionGroup var daemon: DaemonOptions

    func run() throws {
        let reply = try daemon.call(Admin.Status.self)
        if daemon.printJSON(reply) { return }
        func line(_ key: String, _ value: String) {
            print("\(key.padding(toLength: 14, withPad: " ", startingAt: 0)) \(value)")
        }
        line("initialized", reply.initialized ? "yes" : "no")
        line("backend", reply.backend)
        // Which backend serves each role: the registers may be a TPM's PCRs while users stay soft.
        if let roles = reply.roles {
            line("  registers", roles.registers)
            line("  keys", roles.keys)
            line("  users", roles.users)
            line("  store", roles.store)
        }
        line("policyVersion", reply.policyVersion.map(String.init) ?? "-")
        line("mode", reply.mode)
        line("bootId", reply.bootID)
        line("users", "\(reply.users)")
        line("entities", "\(reply.entities)")
        line("measurements", "\(reply.measurements)")
        line("measurementBatches", "\(reply.measurementBatches)")
        // A lost guard first: while none runs, the kernel lets every exec through.
        line("guards", reply.guards.isEmpty ? "none heard from" : "\(reply.guards.count)")
        for item in reply.guards.sorted(by: { ($0.state == "lost" ? 0 : 1) < ($1.state == "lost" ? 0 : 1) }) {
            let who = "\(item.vm) via \(item.via)" + (item.pid.map { " (pid \($0))" } ?? "")
            let state = item.state == "lost" ? "LOST" : item.state
            line("  \(who)", "\(state) since \(item.since)" + (item.reason.map { ": \($0)" } ?? ""))
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
        let roleList = roles.split(separator: ",").map(String.init)
        let reply = try daemon.call(Admin.AddUser.self, .init(user: name, pin: pin, roles: roleList))
        if daemon.printJSON(reply) { return }
        print(reply.certificate)
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
        let reply = try daemon.call(Admin.UnblockPin.self, .init(user: name, soPIN: soPin, newPIN: newPin))
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
        let reply = try daemon.call(Admin.SetMode.self, .init(mode: mode.rawValue))
        if daemon.printJSON(reply) { return }
        print("mode: \(reply.mode)")
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
        let reply = try daemon.call(Token.Certificate.self, .init(name: name))
        if daemon.printJSON(reply) { return }
        print(reply.pem, terminator: "")
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
        let reply = try WaitingLine.around(Self.largeAllowLists(text, file: file)) {
            try daemon.call(Admin.LoadPolicy.self, .init(policy: text, signature: sig))
        }
        if daemon.printJSON(reply) { return }
        print("policy version \(reply.version.map(String.init) ?? "?") in force")
    }
}

extension PolicyLoad {
    /// Allow-lists past this size take ukeyd a noticeable time to read, hash and index.
    static let largeAllowList: Int64 = 16 << 20

    /// What the waiting line says while ukeyd loads a policy whose allow-lists are large, or nil.
    static func largeAllowLists(_ text: String, file: String) -> String? {
        guard let policy = try? PolicyParser.parse(text, file: file) else { return nil }
        let lists = policy.runtime.compactMap(\.allowList).map(\.file)
        let size = lists.compactMap { (try? FileManager.default.attributesOfItem(atPath: $0))?[.size] as? Int64 }
            .reduce(0, +)
        guard size > largeAllowList else { return nil }
        return
            "ukeyd is loading the policy: its allow-list\(lists.count == 1 ? "" : "s") \(ProgressLine.bytes(Double(size)))"
    }
}
