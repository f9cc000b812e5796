import ArgumentParser
import Foundation
import UkeyAPI
import UkeyHypervisor

/// `ukeyctl vm enroll-vtpm VM`: gives a VM the vTPM ukeyd runs. In its domain, the `<tpm>`
/// element whose backend is ukeyd's socket for it; in the policy, `vtpm: true` on its entity.
/// Both are files the operator reviews (and signs, for the policy): nothing is sent to ukeyd.
struct VMEnrollVTPM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll-vtpm",
        abstract: "Give a VM the vTPM ukeyd runs: the <tpm> element in its domain XML, vtpm: true in the policy.",
        discussion:
            "With --domain, the domain's XML gets <tpm model='tpm-crb'><backend type='external'> on <vtpm-dir>/VM.sock (written in place; refused if it has a <tpm> already). With --policy, the VM's entity gets vtpm: true (sign the policy again, then load it). ukeyd starts the vTPM only when the VM's start is trusted, and certifies its EK with the token's vTPM CA."
    )
    @Argument(help: "The VM's policy entity.") var vm: String
    @Option(help: "The domain's XML file to add the <tpm> element to (virsh dumpxml, then virsh define).")
    var domain: String?
    @Option(help: "The policy file whose entity gets vtpm: true.") var policy: String?
    @Option(help: "Where ukeyd runs the vTPMs ([vtpm] sockets).") var vtpmDir = "/run/ukey/vtpm"
    @Option(help: "The TPM model the guest sees: tpm-crb or tpm-tis.") var model = "tpm-crb"

    func validate() throws {
        guard domain != nil || policy != nil else {
            throw ValidationError("give --domain FILE, --policy FILE, or both")
        }
        guard ["tpm-crb", "tpm-tis"].contains(model) else { throw ValidationError("--model is tpm-crb or tpm-tis") }
        guard DomainMapping.isEntityName(vm) else { throw ValidationError("'\(vm)' is not a policy entity name") }
    }

    func run() throws {
        if let domain {
            let text = String(decoding: try PolicyFiles.read(domain), as: UTF8.self)
            try PolicyFiles.write(
                Array(try Self.addTPM(to: text, vm: vm, directory: vtpmDir, model: model).utf8),
                to: domain
            )
            print("\(domain): <tpm> on \(vtpmDir)/\(vm).sock added; virsh define \(domain)")
        }
        if let policy {
            let text = String(decoding: try PolicyFiles.read(policy), as: UTF8.self)
            try PolicyFiles.write(Array(try Self.markVTPM(in: text, vm: vm, file: policy).utf8), to: policy)
            print("\(policy): \(vm) has vtpm: true; sign it again (ukeyctl policy sign) and load it")
        }
    }

    /// The domain with the `<tpm>` element before `</devices>`.
    static func addTPM(to xml: String, vm: String, directory: String, model: String) throws -> String {
        guard !xml.contains("<tpm") else {
            throw InputError("the domain has a <tpm> already: remove it first (a TPM ukeyd does not run is refused)")
        }
        guard let end = xml.range(of: "</devices>", options: .backwards) else {
            throw InputError("the domain has no <devices> element")
        }
        let element = """
              <tpm model='\(model)'>
                  <backend type='external'>
                    <source type='unix' mode='connect' path='\(directory)/\(vm).sock'/>
                  </backend>
                </tpm>

            """
        return xml.replacingCharacters(in: end.lowerBound..<end.lowerBound, with: element + "  ")
    }

    /// The policy with `vtpm: true` after the entity's `kind:` line (its entity keys' indentation).
    static func markVTPM(in text: String, vm: String, file: String) throws -> String {
        var lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "- name: \(vm)" }) else {
            throw InputError("\(file) has no entity '\(vm)'")
        }
        let indent = String(
            repeating: " ",
            count: (lines[start].firstIndex(of: "-")?.utf16Offset(in: lines[start]) ?? 2) + 2
        )
        var index = start + 1
        var kindLine: Int?
        while index < lines.count, lines[index].hasPrefix(indent) || lines[index].isEmpty {
            let line = lines[index].trimmingCharacters(in: .whitespaces)
            if lines[index].hasPrefix(indent + " ") {
                index += 1
                continue
            }
            if line.hasPrefix("vtpm:") { throw InputError("\(vm) has a vtpm: line already (\(line))") }
            if line.hasPrefix("kind:") {
                let kind = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
                guard kind == "user-vm" || kind == "service-vm" else {
                    throw InputError("\(vm) is a \(kind), not a VM (user-vm or service-vm): only a VM has a vTPM")
                }
                kindLine = index
            }
            index += 1
        }
        guard let kindLine else { throw InputError("\(vm)'s entity has no kind: line") }
        lines.insert(indent + "vtpm: true", at: kindLine + 1)
        return lines.joined(separator: "\n")
    }
}

/// `ukeyctl vm vtpm-cert VM`: the EK certificate of the VM's vTPM and its chain to the token's
/// root, as a guest's verifier checks it (`openssl verify -CAfile ROOT -untrusted CHAIN`).
struct VMVTPMCertificate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vtpm-cert",
        abstract: "Print the EK certificate of a VM's vTPM, then the vTPM CA's and the root CA's (PEM).",
        discussion:
            "openssl verify -CAfile <(the last) -untrusted <(the middle) -policy 2.25.10392339744558737358530141729444115455.2.3 -explicit_policy <(the first) checks a guest's EK against this host's ukey. --platform: the platform certificate first instead; --ecc: the ECC EK's."
    )
    @OptionGroup var daemon: DaemonOptions
    @Argument(help: "The VM's policy entity.") var vm: String
    @Flag(help: "The ECC EK's certificate instead of the RSA EK's.") var ecc = false
    @Flag(help: "The platform certificate instead of the EK's.") var platform = false

    func run() throws {
        let reply = try daemon.call(VTPM.Certificate.self, .init(entity: vm))
        if daemon.printJSON(reply) { return }
        let first: String?
        if platform {
            first = reply.platform
        } else if ecc {
            first = reply.endorsementECC
        } else {
            first = reply.endorsement
        }
        guard let first else {
            throw InputError("ukeyd issued no \(platform ? "platform" : "ECC EK") certificate for \(vm)'s vTPM")
        }
        print(first + reply.authority + reply.root, terminator: "")
    }
}
