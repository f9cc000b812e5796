import ArgumentParser
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

/// `ukeyctl quote verify`: checks a "ukey-v1" quote as a remote verifier would.
struct QuoteVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a ukey-v1 quote's signature, nonce and (optionally) certificate chain.",
        discussion: "Exit status 0 when the quote verifies, 1 with the reason when it does not, 2 for unreadable input."
    )

    @Option(help: "The quote bytes (binary file).")
    var quote: String
    @Option(help: "The DER ECDSA signature (binary file).")
    var signature: String
    @Option(help: "The attestation key's PEM certificate.")
    var cert: String
    @Option(help: "The nonce sent with the quote request, in hex.")
    var nonce: String
    @Option(help: "The token's root CA (PEM): also check that it issued the attestation certificate.")
    var rootCA: String?

    func run() throws {
        guard let nonceBytes = Hex.decode(nonce), !nonceBytes.isEmpty else {
            throw InputError("--nonce must be hex, e.g. 00112233")
        }
        let verified: QuoteVerifier.Verified
        do {
            verified = try QuoteVerifier.verify(
                quote: try PolicyFiles.read(quote),
                signature: try PolicyFiles.read(signature),
                certificatePEM: String(decoding: try PolicyFiles.read(cert), as: UTF8.self),
                nonce: nonceBytes,
                rootCAPEM: try rootCA.map { String(decoding: try PolicyFiles.read($0), as: UTF8.self) }
            )
        } catch let error as TokenError {
            print("quote does NOT verify: \(error.reason)")
            throw ExitCode.checkFailed
        }
        let q = verified.quote
        print("quote verifies: signature, nonce\(rootCA == nil ? "" : ", certificate chain")")
        print("  boot \(q.bootID) (boot #\(q.bootCounter)) at \(Date(timeIntervalSince1970: TimeInterval(q.time)))")
        for register in q.registers {
            print("  \(q.bank.rawValue) register \(register.index): \(Hex.encode(register.value))")
        }
        print("  event log: \(q.eventLog)")
    }
}
