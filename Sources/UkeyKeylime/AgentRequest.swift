/// A request to the agent, read from an HTTP request's method and target. Untrusted: whatever
/// reaches the agent's port after TLS. Anything this does not know is refused, naming why; the
/// agent never guesses.
public enum AgentRequest: Equatable, Sendable {
    /// `GET /version`: the API versions this agent speaks.
    case version
    /// `GET /v2.x/quotes/identity?nonce=` (the tenant, when it adds the agent).
    case identityQuote(version: String, nonce: String)
    /// `GET /v2.x/quotes/integrity?nonce=&mask=&partial=&ima_ml_entry=` (the verifier).
    case integrityQuote(version: String, nonce: String, pcrs: [Int], partial: Bool)

    /// The API versions served: Keylime 7.14.3's tenant picks the highest it shares.
    public static let versions = ["2.1", "2.2", "2.3", "2.4", "2.5", "2.6"]
    /// A target longer than this is refused before it is read.
    public static let maxTarget = 2048

    public struct Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        /// The HTTP status to answer with.
        public let status: Int
        public let reason: String
        public var description: String { reason }

        init(_ status: Int, _ reason: String) {
            self.status = status
            self.reason = reason
        }
    }

    public static func parse(method: String, target: String) throws(Refusal) -> AgentRequest {
        guard target.utf8.count <= maxTarget else {
            throw Refusal(414, "the request target is over \(maxTarget) bytes")
        }
        guard method == "GET" else { throw Refusal(405, "only GET is served, not \(method.prefix(16))") }
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts[0].split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let query = try Self.query(parts.count > 1 ? String(parts[1]) : "")
        if path == ["", "version"] {
            guard query.isEmpty else { throw Refusal(400, "/version takes no parameters") }
            return .version
        }
        guard path.count == 4, path[0].isEmpty, path[1].hasPrefix("v"), path[2] == "quotes" else {
            throw Refusal(404, "no such endpoint: \(String(parts[0].prefix(64)))")
        }
        let version = String(path[1].dropFirst())
        guard versions.contains(version) else {
            // Keylime asks /version again when the status says so.
            throw Refusal(400, "API version not supported: \(version.prefix(16))")
        }
        let nonce = try Self.nonce(query["nonce"])
        switch path[3] {
        case "identity":
            try Self.only(query, ["nonce"])
            return .identityQuote(version: version, nonce: nonce)
        case "integrity":
            try Self.only(query, ["nonce", "mask", "partial", "ima_ml_entry"])
            guard let partialText = query["partial"], partialText == "0" || partialText == "1" else {
                throw Refusal(400, "partial must be 0 or 1")
            }
            if let entry = query["ima_ml_entry"], entry.isEmpty || entry.count > 10 || !entry.allSatisfy(\.isASCIIDigit)
            {
                throw Refusal(400, "ima_ml_entry must be a number")
            }
            return .integrityQuote(
                version: version,
                nonce: nonce,
                pcrs: try Self.pcrs(mask: query["mask"]),
                partial: partialText == "1"
            )
        default:
            throw Refusal(404, "no such quote: \(path[3].prefix(32))")
        }
    }

    /// The PCRs a mask names (`0x` and at most six hex digits: PCRs 0-23).
    public static func pcrs(mask: String?) throws(Refusal) -> [Int] {
        guard let mask, mask.hasPrefix("0x"), (3...8).contains(mask.count),
            let bits = UInt32(mask.dropFirst(2), radix: 16)
        else { throw Refusal(400, "mask must be 0x and 1-6 hex digits") }
        return (0..<24).filter { bits & (1 << UInt32($0)) != 0 }
    }

    /// A nonce as Keylime makes them: 1-64 letters and digits, used as the quote's qualifying data.
    static func nonce(_ value: String?) throws(Refusal) -> String {
        guard let value, (1...64).contains(value.utf8.count),
            value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
        else { throw Refusal(400, "nonce must be 1-64 letters and digits") }
        return value
    }

    static func query(_ text: String) throws(Refusal) -> [String: String] {
        var out: [String: String] = [:]
        guard !text.isEmpty else { return out }
        for pair in text.split(separator: "&", omittingEmptySubsequences: false) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, !kv[0].isEmpty, kv[0].utf8.count <= 32, kv[1].utf8.count <= 128 else {
                throw Refusal(400, "a query parameter is not name=value")
            }
            // Keylime's values are letters, digits and 'x': nothing needs percent-decoding, and a
            // value that would is refused rather than decoded.
            guard kv[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw Refusal(400, "the value of \(kv[0].prefix(32)) is not letters and digits")
            }
            guard out.updateValue(String(kv[1]), forKey: String(kv[0])) == nil else {
                throw Refusal(400, "\(kv[0].prefix(32)) is given twice")
            }
        }
        return out
    }

    static func only(_ query: [String: String], _ names: Set<String>) throws(Refusal) {
        if let unknown = query.keys.sorted().first(where: { !names.contains($0) }) {
            throw Refusal(400, "unknown parameter \(unknown)")
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
