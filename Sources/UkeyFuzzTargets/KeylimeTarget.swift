import UkeyKeylime

extension FuzzTarget {
    /// What reaches ukey-keylime-agent from the network: an HTTP request line's method and target
    /// (after TLS), and the registrar's challenge blob.
    static let keylimeAgent = FuzzTarget(
        name: "keylime-agent",
        property:
            "a request target is refused with a 4xx status and a reason, or read as a request whose nonce is 1-64 letters and digits and whose PCRs are in 0-23; a challenge blob splits into a credential and a secret that together are the blob's bytes after its header, or is refused",
        check: { bytes throws(FuzzFailure) in
            let text = String(decoding: bytes, as: UTF8.self)
            let line = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            let method = line.count == 2 ? String(line[0]) : "GET"
            let target = line.count == 2 ? String(line[1]) : text
            switch Result(catching: { () throws(AgentRequest.Refusal) in
                try AgentRequest.parse(method: method, target: target)
            }) {
            case .success(let request):
                try require(method == "GET", "a \(method.prefix(16)) request was served")
                switch request {
                case .version:
                    try require(target == "/version", "\(target.prefix(80)) was read as /version")
                case .identityQuote(_, let nonce):
                    try require(Self.goodNonce(nonce), "a nonce outside the rules was taken")
                case .integrityQuote(_, let nonce, let pcrs, _):
                    try require(Self.goodNonce(nonce), "a nonce outside the rules was taken")
                    try require(pcrs.allSatisfy { (0...23).contains($0) }, "a PCR outside 0-23 was taken")
                }
            case .failure(let error):
                try require(
                    (400..<500).contains(error.status) && !error.reason.isEmpty,
                    "a refusal without a 4xx and a reason"
                )
            }
            if let challenge = try? CredentialChallenge(blob: bytes) {
                try require(
                    Array(bytes.dropFirst(8)) == challenge.credential + challenge.encryptedSecret,
                    "the challenge's parts are not the blob"
                )
            }
        },
        seeds: {
            [
                "GET /version", "GET /v2.6/quotes/identity?nonce=AbC123xyz0AbC123xyz0",
                "GET /v2.2/quotes/integrity?nonce=n0nce&mask=0xfbff&partial=0&ima_ml_entry=0",
                "POST /v2.2/keys/ukey", "GET /v9.9/quotes/identity?nonce=a",
            ].map { Array($0.utf8) } + [
                [0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1, 0, 4, 0, 2, 0x61, 0x62, 0, 3, 0x78, 0x79, 0x7A]
            ]
        }
    )

    static func goodNonce(_ nonce: String) -> Bool {
        (1...64).contains(nonce.utf8.count) && nonce.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }
}
