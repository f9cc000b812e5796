import Crypto
import UkeyAPI
import UkeyCodec
import UkeyKeylime

/// Answers the agent's requests from ukeyd: quotes by the attestation key with PCR 16 (the
/// payload key's binding) always in the selection, and the boot's event log with any quote that
/// covers PCR 0 (a measured-boot check).
struct QuoteService: Sendable {
    let ukeyd: UkeydLink
    let payloadPublicKeyPEM: String

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
        let log = selection.contains(0) ? try ukeyd.call(Boot.EventLog.self, Empty()).data.bytes : nil
        return QuoteReply(
            attest: quote.attest.bytes,
            signature: quote.signature.bytes,
            pcrValues: quote.pcrValues.bytes,
            publicKeyPEM: withKey ? payloadPublicKeyPEM : nil,
            eventLog: log
        )
    }

    /// PCR 16 = H(0 || H(the PEM sent as `pubkey`)).
    func bindPayloadKey() throws {
        let digest = SHA256.hash(data: Array(payloadPublicKeyPEM.utf8))
        _ = try ukeyd.call(Attest.BindKey.self, .init(digest: Hex.encode(Array(digest))))
    }
}
