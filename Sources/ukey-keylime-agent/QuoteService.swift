import Crypto
import Foundation
import UkeyAPI
import UkeyCodec
import UkeyKeylime

/// Answers the agent's requests from ukeyd: quotes by the attestation key with PCR 16 (the
/// payload key's binding) always in the selection, and the boot's event log with any quote that
/// covers PCR 0 (a measured-boot check).
struct QuoteService: Sendable {
    let ukeyd: UkeydLink
    let payloadPublicKeyPEM: String
    /// The firmware's event log, when the host has one: ukey's events follow it.
    var firmwareLog: String? = nil

    /// (HTTP status, body) for a request already parsed.
    func answer(_ request: AgentRequest) -> (Int, [UInt8]) {
        do {
            switch request {
            case .version:
                return (200, AgentResponse.versions)
            case .identityQuote(_, let nonce):
                return (200, try quote(nonce: nonce, pcrs: [], withKey: true).body)
            case .integrityQuote(_, let nonce, let pcrs, let partial):
                return (200, try quote(nonce: nonce, pcrs: pcrs, withKey: !partial).body)
            }
        } catch {
            return (500, AgentResponse.failure(500, "the quote failed: \(error)"))
        }
    }

    func quote(nonce: String, pcrs: [Int], withKey: Bool) throws -> QuoteReply {
        let selection = Array(Set(pcrs).union([16])).sorted()
        let quote = try ukeyd.call(Attest.Quote.self, .init(nonce: Array(nonce.utf8), pcrs: selection))
        let log = selection.contains(0) ? try bootLog() : nil
        return QuoteReply(
            attest: quote.attest.bytes,
            signature: quote.signature.bytes,
            pcrValues: quote.pcrValues.bytes,
            publicKeyPEM: withKey ? payloadPublicKeyPEM : nil,
            eventLog: log
        )
    }

    /// ukey's boot log, after the firmware's when there is one (read afresh: it grows at boot).
    func bootLog() throws -> [UInt8] {
        let ours = try ukeyd.call(Boot.EventLog.self, Empty()).data.bytes
        guard let firmwareLog else { return ours }
        guard let data = FileManager.default.contents(atPath: firmwareLog), data.count <= 64 << 20 else {
            throw BootLogMerge.Refusal(description: "cannot read the firmware's event log \(firmwareLog)")
        }
        return try BootLogMerge.merge(firmware: Array(data), ukey: ours)
    }

    /// PCR 16 = H(0 || H(the PEM sent as `pubkey`)).
    func bindPayloadKey() throws {
        let digest = SHA256.hash(data: Array(payloadPublicKeyPEM.utf8))
        _ = try ukeyd.call(Attest.BindKey.self, .init(digest: Hex.encode(Array(digest))))
    }
}
