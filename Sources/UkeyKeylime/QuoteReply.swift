import Foundation
import UkeyCodec

/// A quote as Keylime's tenant and verifier read it: `"r" + b64(TPMS_ATTEST) + ":" +
/// b64(TPMT_SIGNATURE) + ":" + b64(PCR values)`, with the algorithms named, the agent's key (its
/// PEM, which PCR 16 binds), and the measured-boot log when the quote covers PCR 0.
public struct QuoteReply: Sendable {
    public var attest: [UInt8]
    public var signature: [UInt8]
    public var pcrValues: [UInt8]
    /// The agent's key as PEM; sent unless the verifier already has it (`partial`).
    public var publicKeyPEM: String?
    /// The binary TCG event log, sent when the quote covers PCR 0.
    public var eventLog: [UInt8]?

    public init(attest: [UInt8], signature: [UInt8], pcrValues: [UInt8], publicKeyPEM: String?, eventLog: [UInt8]?) {
        self.attest = attest
        self.signature = signature
        self.pcrValues = pcrValues
        self.publicKeyPEM = publicKeyPEM
        self.eventLog = eventLog
    }

    public var quote: String {
        "r" + Data(attest).base64EncodedString() + ":" + Data(signature).base64EncodedString() + ":"
            + Data(pcrValues).base64EncodedString()
    }

    /// The whole response body.
    public var body: [UInt8] {
        var results: [String: JSONValue] = [
            "quote": .string(quote), "hash_alg": "sha256", "enc_alg": "rsa", "sign_alg": "rsassa",
        ]
        if let publicKeyPEM { results["pubkey"] = .string(publicKeyPEM) }
        if let eventLog { results["mb_measurement_list"] = .string(Data(eventLog).base64EncodedString()) }
        return AgentResponse.success(results)
    }
}

/// Keylime's response envelope: `{"code": …, "status": …, "results": {…}}`.
public enum AgentResponse {
    public static func success(_ results: [String: JSONValue]) -> [UInt8] {
        JSONWriter.write(["code": 200, "status": "Success", "results": .object(results)])
    }

    public static func failure(_ code: Int, _ status: String) -> [UInt8] {
        JSONWriter.write(["code": .int(code), "status": .string(status), "results": [:]])
    }

    /// `GET /version`'s answer.
    public static var versions: [UInt8] {
        success([
            "supported_version": .string(AgentRequest.versions.last!),
            "supported_versions": .array(AgentRequest.versions.map { .string($0) }),
        ])
    }
}
