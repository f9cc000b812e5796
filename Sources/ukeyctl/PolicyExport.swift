import ArgumentParser
import UkeyVarlink
import Crypto
import Foundation
import UkeyCodec
import UkeyCore
import UkeyPolicy
import UkeyToken

/// `ukeyctl policy export --keylime FILE --signer CERT -o OUT`: the reference state that ukey's
/// measured-boot policy for Keylime's verifier (`contrib/keylime/ukey_policy.py`) checks a host's
/// boot log against: each entity's parent, register (the PCR its events land on) and components'
/// SHA-256 measurements, from a policy whose signature checks.
struct PolicyExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a signed policy's expected chain for a remote verifier (--keylime: a Keylime refstate)."
    )

    @Flag(help: "Write the refstate of ukey's Keylime measured-boot policy (the only format so far).")
    var keylime = false

    @Option(help: "The policy signer's certificate (PEM): the policy's signature must check with it.")
    var signer: String

    @Option(help: "The detached signature (default FILE.sig).")
    var signature: String?

    @Option(name: .shortAndLong, help: "Where to write the refstate (JSON).")
    var output: String

    @Argument(help: "The policy file.")
    var file: String

    @OptionGroup var jsonOutput: JSONOutput

    /// PCRs a Keylime verifier does not replay from the log (IMA's 10) or uses itself (16): an
    /// entity there could not be checked, so the export refuses it.
    static let keylimeReserved: Set<Int> = [10, 16]

    func run() throws {
        guard keylime else { throw ValidationError("say which format: --keylime") }
        let text = try PolicyFiles.read(file)
        let certificate = try PolicySigner(pemEncoded: String(decoding: try PolicyFiles.read(signer), as: UTF8.self))
        guard certificate.isValidSignature(try PolicyFiles.read(signature ?? file + ".sig"), for: text) else {
            throw InputError("\(file): the signature does not check with \(signer): nothing exported")
        }
        let (_, expected) = try PolicyFiles.loadForUse(file)
        var entities: [String: JSONValue] = [:]
        for entity in expected.entities {
            guard !Self.keylimeReserved.contains(entity.register) else {
                throw InputError(
                    "\(file): entity \(entity.name) measures into register \(entity.register), which Keylime does not check from the log (10 is IMA's, 16 the agent's key): give it another register (14 or 15 on a host whose boot uses 11-13)"
                )
            }
            var components: [String: JSONValue] = [:]
            for component in entity.components {
                var entry: [String: JSONValue] = [
                    "sha256": .string(Hex.encode(component.expected.measurement(for: .sha256)))
                ]
                if component.writable { entry["writable"] = true }
                components[component.name] = .object(entry)
            }
            entities[entity.name] = .object([
                "parent": .string(entity.parent), "register": .int(entity.register), "components": .object(components),
            ])
        }
        let refstate: JSONValue = [
            "ukey_refstate": 1,
            "policy_sha256": .string(Hex.encode(Array(SHA256.hash(data: text)))),
            "entities": .object(entities),
        ]
        try PolicyFiles.write(JSONWriter.write(refstate) + [0x0A], to: output)
        if jsonOutput.json {
            jsonOutput.emit(["output": .string(output), "entities": .int(entities.count)])
        } else {
            print("wrote \(output): \(entities.count) entities")
        }
    }
}
