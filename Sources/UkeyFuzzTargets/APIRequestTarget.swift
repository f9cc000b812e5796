import UkeyAPI
import UkeyCodec

extension FuzzTarget {
    /// Every method's request reader, as ukeyd runs it on a call's parameters: the JSON object,
    /// then the typed request and its checks. The first byte picks the method.
    static let apiRequest = FuzzTarget(
        name: "api-request",
        property:
            "a request read from parameters, written again and read again, is the same request; a refusal is InvalidParameter naming a parameter that was given (or missing) and nothing else",
        check: { bytes throws(FuzzFailure) in
            guard let first = bytes.first else { return }
            let methods = APIInterface.allMethods
            let method = methods[Int(first) % methods.count]
            guard case .object(let parameters)? = try? JSONReader.parse(bytes.dropFirst()) else { return }
            try roundTrip(method, parameters)
        },
        seeds: {
            let measure: [String: JSONValue] = [
                "entity": "vmm", "component": "kernel", "digest": "sha256:00", "hold": "vm1",
            ]
            let batch: [String: JSONValue] = [
                "items": [["vm": "office", "path": "/usr/bin/x", "digest": "sha256:11"]], "tag": "t-1",
            ]
            let quote: [String: JSONValue] = ["nonce": "AAECAw==", "registers": [8, 9], "bank": "sm3"]
            return [
                seed(Boot.Measure.self, measure), seed(Runtime.CheckExecBatch.self, batch),
                seed(Boot.Quote.self, quote), seed(Admin.Status.self, [:]),
            ]
        }
    )

    /// The input that picks `method` with these parameters.
    private static func seed<M: APIMethod>(_ method: M.Type, _ parameters: [String: JSONValue]) -> [UInt8] {
        let index = APIInterface.allMethods.firstIndex { ObjectIdentifier($0) == ObjectIdentifier(method) } ?? 0
        var out = [UInt8(index)]
        JSONWriter.write(.object(parameters), into: &out)
        return out
    }

    private static func roundTrip<M: APIMethod>(
        _ method: M.Type,
        _ parameters: [String: JSONValue]
    ) throws(FuzzFailure) {
        // The reader the daemon runs (a message's own, by hand on the exec path) and the
        // Codable one must give the same request, or refuse naming the same parameter.
        let codable = Result { () throws(APIError) -> M.Request in
            let request = try JSONValueDecoder.decode(M.Request.self, from: parameters)
            try request.validate()
            return request
        }
        let wire = Result { () throws(APIError) -> M.Request in try M.Request(wire: parameters) }
        try require(codable == wire, "\(M.name): the Codable reader gives \(codable), the wire reader \(wire)")
        let request: M.Request
        switch wire {
        case .success(let read): request = read
        case .failure(let error):
            guard case .invalidParameter(let name) = error else {
                throw FuzzFailure("\(M.name) refused its parameters with \(error), not InvalidParameter")
            }
            try require(!name.isEmpty, "\(M.name) refused its parameters without naming one")
            return
        }
        try require(
            request.wire == JSONValueEncoder.encode(request),
            "\(M.name): the wire writer and the Codable one differ for \(request)"
        )
        let again = Result { () throws(APIError) -> M.Request in try M.Request(wire: request.wire) }
        try require(again == .success(request), "\(M.name): \(request) came back as \(again)")
    }
}
