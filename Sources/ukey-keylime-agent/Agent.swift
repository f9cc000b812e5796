import ArgumentParser
import Foundation
import UkeyAPI
import UkeyKeylime

/// `ukey-keylime-agent`: this host as a Keylime agent (pull model, API 2.1-2.6) that the stock
/// registrar, verifier and tenant accept. The TPM is ukeyd's: the EK, the attestation key under
/// it, credential activation and quotes are `io.ukey.Attest` calls, and the measured-boot log is
/// ukey's boot (`io.ukey.Boot.EventLog`).
@main
struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ukey-keylime-agent",
        abstract: "Serve this host's TPM quotes and ukey's boot log to a Keylime verifier."
    )

    @Option(help: "The agent's UUID, as the tenant names it.")
    var uuid: String

    @Option(help: "ukeyd's socket.")
    var socket = "/run/ukey/ukeyd.sock"

    @Option(help: "The registrar's plain-HTTP address.")
    var registrar = "http://127.0.0.1:8890"

    @Option(help: "The address the verifier and tenant reach this agent at (IPv4).")
    var ip = "127.0.0.1"

    @Option(help: "The port to serve HTTPS on.")
    var port = 9002

    @Option(help: "Keylime's CA certificate (PEM): the verifier's and tenant's client certificates must chain to it.")
    var trustedClientCA: String

    @Option(
        help:
            "The firmware's event log, which ukey's events follow in the log sent (default: the kernel's, when it exists; 'none' for none)."
    )
    var firmwareLog = "/sys/kernel/security/tpm0/binary_bios_measurements"

    @Option(help: "Where the agent keeps its TLS and payload keys (0700).")
    var stateDirectory = "/var/lib/ukey-keylime-agent"

    func validate() throws {
        guard uuid.count <= 64, !uuid.isEmpty,
            uuid.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        else {
            throw ValidationError("--uuid: letters, digits and '-', at most 64")
        }
        guard AgentKeys.IPv4(ip) != nil, ip.count <= 15 else {
            throw ValidationError("--ip: an IPv4 address (Keylime's limit)")
        }
        guard (1...65535).contains(port) else { throw ValidationError("--port: 1-65535") }
        guard URL(string: registrar)?.scheme == "http" else { throw ValidationError("--registrar: an http:// URL") }
    }

    func run() async throws {
        let keys = try AgentKeys.loadOrCreate(directory: stateDirectory, uuid: uuid, ip: ip)
        let ukeyd = UkeydLink(socket: socket)
        let identity = try ukeyd.call(Attest.Identity.self, .init())
        var service = QuoteService(ukeyd: ukeyd, payloadPublicKeyPEM: keys.payloadPublicKeyPEM)
        if firmwareLog != "none", FileManager.default.fileExists(atPath: firmwareLog) {
            service.firmwareLog = firmwareLog
            _ = try service.bootLog()  // a log that cannot be merged is said now, not at the first quote
            say("the boot log sent: \(firmwareLog), then ukey's events")
        }
        try service.bindPayloadKey()
        let server = AgentServer(
            host: ip,
            port: port,
            tls: try AgentServer.context(keys: keys, trustedClientCA: trustedClientCA),
            service: service
        )
        let registrar = Registrar(base: URL(string: registrar)!, uuid: uuid)
        try await withThrowingTaskGroup { group in
            group.addTask {
                try await server.run { say("serving on https://\(ip):\(port)") }
            }
            let challenge = try await registrar.register(
                ek: identity.ek.bytes,
                ekCertificate: identity.ekCertificate?.bytes,
                ak: identity.ak.bytes,
                tlsCertificatePEM: keys.tlsCertificatePEM,
                ip: ip,
                port: port
            )
            let secret = try ukeyd.call(
                Attest.ActivateCredential.self,
                .init(credential: challenge.credential, encryptedSecret: challenge.encryptedSecret)
            )
            try await registrar.activate(authTag: CredentialChallenge.authTag(secret: secret.secret.bytes, uuid: uuid))
            say("registered and activated as \(uuid) (AK \(identity.akName.prefix(16))…)")
            try await group.waitForAll()
        }
    }
}

/// One line on standard output at once (unbuffered, so a journal or a log file sees it now).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
