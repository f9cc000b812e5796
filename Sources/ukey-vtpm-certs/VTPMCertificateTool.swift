import Foundation
import UkeyAPI
import UkeyClient
import UkeyVarlink

/// `ukey-vtpm-certs`: the certificate tool ukeyd names in swtpm_setup's configuration
/// (`create_certs_tool`) when it makes a VM's vTPM. swtpm_setup runs it as it runs
/// swtpm_localca, once for the EK certificate and once for the platform certificate:
///
///     ukey-vtpm-certs --type ek|platform --ek KEY --dir DIR --configfile FILE
///         [--vmid ID] [--logfile FILE] [--optsfile FILE] --tpm-manufacturer S --tpm-model S
///         --tpm-version S [--tpm-spec-family S --tpm-spec-level N --tpm-spec-revision N]
///         --tpm2 [--allow-signing] [--decryption]
///
/// and reads `DIR/ek.cert` or `DIR/platform.cert` (DER) when it exits 0. It holds no key: it
/// asks ukeyd (`io.ukey.VTPM.Certify`) with the socket, VM and one-time ticket ukeyd wrote in
/// the configuration file, so the vTPM CA certifies only vTPMs ukeyd is making. Anything it
/// does not know is refused, naming it.
@main
struct VTPMCertificateTool {
    static let valued: Set<String> = [
        "--type", "--ek", "--dir", "--vmid", "--optsfile", "--configfile", "--logfile", "--tpm-spec-family",
        "--tpm-spec-revision", "--tpm-spec-level", "--tpm-manufacturer", "--tpm-model", "--tpm-version",
    ]
    static let flags: Set<String> = ["--tpm2", "--allow-signing", "--decryption"]

    static func main() {
        var options: [String: String] = [:]
        var arguments = Array(CommandLine.arguments.dropFirst())[...]
        while let argument = arguments.popFirst() {
            if flags.contains(argument) {
                options[argument] = ""
            } else if valued.contains(argument), let value = arguments.popFirst() {
                options[argument] = value
            } else {
                fail(
                    "unknown or incomplete option '\(argument)' (swtpm_localca's interface: --type, --ek, --dir, --configfile, ...)",
                    log: nil
                )
            }
        }
        let log = options["--logfile"]
        guard options["--tpm2"] != nil else { fail("only a TPM 2 is certified (--tpm2)", log: log) }
        guard let kind = options["--type"], ["ek", "platform"].contains(kind) else {
            fail("--type must be ek or platform", log: log)
        }
        guard let ek = options["--ek"], let directory = options["--dir"], let configFile = options["--configfile"]
        else {
            fail("--ek, --dir and --configfile are required", log: log)
        }
        let config = readConfig(configFile, log: log)
        guard let socket = config["socket"], let entity = config["entity"], let ticket = config["ticket"] else {
            fail("\(configFile) lacks socket, entity or ticket (ukeyd writes it for each vTPM it makes)", log: log)
        }
        let request = VTPM.Certify.Request(
            entity: entity,
            ticket: ticket,
            kind: kind,
            ek: ek,
            tpmManufacturer: options["--tpm-manufacturer"] ?? "",
            tpmModel: options["--tpm-model"] ?? "",
            tpmVersion: options["--tpm-version"] ?? ""
        )
        let reply: VTPM.Certify.Reply
        do {
            reply = try VarlinkConnection(path: socket, timeout: 60).call(VTPM.Certify.self, request)
        } catch let error as APIError {
            let reason = error.parameters["reason"]?.stringValue.map { ": \($0)" } ?? ""
            fail("ukeyd refused the \(kind) certificate of \(entity)'s vTPM: \(error.name)\(reason)", log: log)
        } catch {
            fail("cannot reach ukeyd at \(socket): \(error)", log: log)
        }
        let path = directory + "/" + (kind == "ek" ? "ek.cert" : "platform.cert")
        guard
            FileManager.default.createFile(
                atPath: path,
                contents: Data(reply.certificate.bytes),
                attributes: [.posixPermissions: 0o600]
            )
        else { fail("cannot write \(path)", log: log) }
        note("ukey-vtpm-certs: \(entity)'s \(kind) certificate from ukeyd's vTPM CA in \(path)", log: log)
    }

    /// `key = value` lines, at most 4 KiB (ukeyd writes three short ones).
    static func readConfig(_ path: String, log: String?) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 4096,
            let text = String(data: data, encoding: .utf8)
        else { fail("cannot read \(path) (or it is over 4 KiB)", log: log) }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let pair = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { fail("\(path): '\(line)' is not key = value", log: log) }
            values[pair[0]] = pair[1]
        }
        return values
    }

    static func note(_ message: String, log: String?) {
        if let log, let handle = FileHandle(forWritingAtPath: log) {
            handle.seekToEndOfFile()
            handle.write(Data((message + "\n").utf8))
            try? handle.close()
        }
    }

    static func fail(_ message: String, log: String?) -> Never {
        note("ukey-vtpm-certs: " + message, log: log)
        FileHandle.standardError.write(Data(("ukey-vtpm-certs: " + message + "\n").utf8))
        exit(1)
    }
}
