import ArgumentParser
import UkeyVarlink
import Foundation
import UkeyCore
import UkeyToken

/// `ukeyctl quote ...`: attestation, offline.
struct QuoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quote",
        abstract: "Get a signed quote of the registers from ukeyd, or verify one offline.",
        subcommands: [QuoteGet.self, QuoteVerify.self],
        defaultSubcommand: QuoteGet.self
    )
}

/// `ukeyctl quote verify`: checks a quote ("ukey-v1", or "tpm2" from the tpm backend) as a
/// remote verifier would.
struct QuoteVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a quote's signature, nonce, (optionally) certificate chain and event log.",
        discussion:
            "The format is told by the quote's first bytes: ukey-v1, or tpm2 (TPMS_ATTEST with a TPMT_SIGNATURE). Exit status 0 when the quote verifies, 1 with the reason when it does not, 2 for unreadable input."
    )

    @Option(help: "The quote bytes (binary file).")
    var quote: String
    @Option(
        help:
            "The signature (binary file): DER ECDSA or SM2 (ukey-v1, as the certificate's key) or TPMT_SIGNATURE (tpm2)."
    )
    var signature: String
    @Option(
        help:
            "The attestation key's PEM certificate, followed by its issuer (the token-keys sub-CA) to check the chain."
    )
    var cert: String
    @Option(help: "The nonce sent with the quote request, in hex.")
    var nonce: String
    @Option(help: "The token's root CA (PEM): also check that it issued the attestation certificate.")
    var rootCA: String?
    @Option(help: "The boot's TCG event log (binary): also check that it replays to the quoted registers.")
    var eventLog: String?
    @Option(help: "The SM2 distinguishing ID the token signed with. Default: GM/T 0009's 1234567812345678.")
    var sm2Id: String = SM2Identifier.defaultText
    @OptionGroup var output: JSONOutput

    func run() throws {
        guard let nonceBytes = Hex.decode(nonce), !nonceBytes.isEmpty else {
            throw InputError("--nonce must be hex, e.g. 00112233")
        }
        let sm2ID: [UInt8]
        do {
            sm2ID = try SM2Identifier.bytes(sm2Id)
        } catch {
            throw InputError(error.reason)
        }
        let bytes = try PolicyFiles.read(quote)
        let certificatePEM = String(decoding: try PolicyFiles.read(cert), as: UTF8.self)
        let rootPEM = try rootCA.map { String(decoding: try PolicyFiles.read($0), as: UTF8.self) }
        var log: EventLog?
        var logBytes: [UInt8] = []
        if let eventLog {
            do {
                logBytes = try PolicyFiles.read(eventLog)
                log = try EventLog(parsing: logBytes)
            } catch let error as UkeyCoreError {
                throw InputError("\(eventLog): \(error.reason)")
            }
        }
        let replayed = log.map { $0.replay().banks[.sha256]!.values }
        let checks =
            ["signature", "nonce"] + (rootCA == nil ? [] : ["certificate chain"]) + (log == nil ? [] : ["event log"])
        do {
            if QuoteVerifier.isTPM2(bytes) {
                let q = try QuoteVerifier.verifyTPM2(
                    attest: bytes,
                    signature: try PolicyFiles.read(signature),
                    certificatePEM: certificatePEM,
                    nonce: nonceBytes,
                    rootCAPEM: rootPEM,
                    registerValues: replayed.map { values in
                        Dictionary(uniqueKeysWithValues: values.enumerated().map { ($0.offset, $0.element) })
                    }
                )
                if output.json {
                    output.emit([
                        "verifies": true, "format": "tpm2", "checks": .array(checks.map { .string($0) }),
                        "clock": .int(Int(q.clock)), "pcrs": .array(q.pcrs.map { .int(Int($0)) }),
                        "pcrDigest": .string(Hex.encode(q.pcrDigest)),
                    ])
                    return
                }
                print("tpm2 quote verifies: \(checks.joined(separator: ", "))")
                print("  TPM clock \(q.clock) ms, resets \(q.resetCount), restarts \(q.restartCount)")
                print(
                    "  sha256 PCRs \(q.pcrs.map(String.init).joined(separator: ", ")): digest \(Hex.encode(q.pcrDigest))"
                )
                if let replayed {
                    for pcr in q.pcrs { print("  sha256 register \(pcr): \(Hex.encode(replayed[pcr]))") }
                }
                return
            }
            let verified = try QuoteVerifier.verify(
                quote: bytes,
                signature: try PolicyFiles.read(signature),
                certificatePEM: certificatePEM,
                nonce: nonceBytes,
                rootCAPEM: rootPEM,
                sm2ID: sm2ID
            )
            let q = verified.quote
            if let replayed {
                guard q.eventLog == Digest.of(logBytes) else {
                    throw TokenError(.invalidArgument, "the quote binds another event log")
                }
                for register in q.registers where replayed[register.index] != register.value {
                    throw TokenError(
                        .invalidArgument,
                        "register \(register.index) is not the value the event log replays to"
                    )
                }
            }
            if output.json {
                output.emit([
                    "verifies": true, "format": "ukey-v1", "checks": .array(checks.map { .string($0) }),
                    "algorithm": .string("\(verified.algorithm)"), "bootID": .string(q.bootID),
                    "bootCounter": .int(Int(q.bootCounter)), "eventLog": .string(q.eventLog.description),
                    "registers": .object(
                        Dictionary(
                            uniqueKeysWithValues: q.registers.map { ("\($0.index)", .string(Hex.encode($0.value))) }
                        )
                    ),
                ])
                return
            }
            print("quote verifies: \(checks.joined(separator: ", "))")
            print("  signed \(verified.algorithm) by the attestation key")
            print("  boot \(q.bootID) (boot #\(q.bootCounter)) at \(Date(timeIntervalSince1970: TimeInterval(q.time)))")
            for register in q.registers {
                print("  \(q.bank.rawValue) register \(register.index): \(Hex.encode(register.value))")
            }
            print("  event log: \(q.eventLog)")
        } catch let error as TokenError {
            if output.json {
                output.emit(["verifies": false, "reason": .string(error.reason)])
            } else {
                print("quote does NOT verify: \(error.reason)")
            }
            throw ExitCode.checkFailed
        }
    }
}
