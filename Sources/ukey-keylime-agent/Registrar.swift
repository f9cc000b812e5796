import Foundation
import UkeyCodec
import UkeyKeylime
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The registrar's plain-HTTP API (port 8890): registration, which answers with a credential
/// challenge, and activation, which proves the EK and the AK live in one TPM.
struct Registrar {
    let base: URL
    let uuid: String
    static let version = "2.1"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// POSTs the agent's identity; the challenge in the reply.
    func register(
        ek: [UInt8],
        ekCertificate: [UInt8]?,
        ak: [UInt8],
        tlsCertificatePEM: String,
        ip: String,
        port: Int
    ) async throws -> CredentialChallenge {
        var body: [String: JSONValue] = [
            "ek_tpm": .string(Data(ek).base64EncodedString()),
            "aik_tpm": .string(Data(ak).base64EncodedString()),
            "mtls_cert": .string(tlsCertificatePEM),
            "ip": .string(ip),
            "port": .int(port),
        ]
        if let ekCertificate { body["ekcert"] = .string(Data(ekCertificate).base64EncodedString()) }
        let results = try await send("POST", "/v\(Self.version)/agents/\(uuid)", body)
        guard let text = results["blob"]?.stringValue, let blob = Data(base64Encoded: text) else {
            throw Failure(description: "the registrar's reply has no base64 blob")
        }
        return try CredentialChallenge(blob: Array(blob))
    }

    func activate(authTag: String) async throws {
        _ = try await send("PUT", "/v\(Self.version)/agents/\(uuid)/activate", ["auth_tag": .string(authTag)])
    }

    /// One request; the reply's `results`, or the registrar's own words when it refuses.
    private func send(_ method: String, _ path: String, _ body: [String: JSONValue]) async throws -> [String: JSONValue]
    {
        guard let url = URL(string: path, relativeTo: base) else { throw Failure(description: "bad registrar URL") }
        var request = URLRequest(url: url, timeoutInterval: 30)
        request.httpMethod = method
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(JSONWriter.write(.object(body)))
        let (data, response) = try await URLSession.shared.data(for: request)
        guard data.count <= 1 << 20 else { throw Failure(description: "the registrar's reply is over 1 MiB") }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let reply = try? JSONReader.parse(Array(data))
        guard status == 200 else {
            let said = reply?["status"]?.stringValue ?? String(decoding: data.prefix(200), as: UTF8.self)
            throw Failure(description: "\(method) \(path): the registrar answered \(status): \(said)")
        }
        return reply?["results"]?.objectValue ?? [:]
    }
}
