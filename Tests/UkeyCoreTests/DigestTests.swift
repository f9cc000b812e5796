import Testing
import UkeyCore

@Suite("Digest parsing")
struct DigestTests {
    let sha256Hex = String(repeating: "ab", count: 32)

    @Test("accepts each algorithm and prints it back exactly")
    func roundTrip() throws {
        for algorithm in HashAlgorithm.allCases {
            let text = "\(algorithm.rawValue):" + String(repeating: "0f", count: algorithm.digestSize)
            let digest = try Digest(parsing: text)
            #expect(digest.algorithm == algorithm)
            #expect(digest.bytes.count == algorithm.digestSize)
            #expect(digest.description == text)
        }
    }

    @Test(
        "refuses malformed digests with a clear reason",
        arguments: [
            ("SHA256:" + String(repeating: "ab", count: 32), "unknown digest algorithm"),
            ("sha256:" + String(repeating: "AB", count: 32), "lower case"),
            ("sha256:" + String(repeating: "ab", count: 31), "64 hex digits, got 62"),
            ("sha256:" + String(repeating: "ab", count: 33), "64 hex digits, got 66"),
            ("md5:" + String(repeating: "ab", count: 16), "unknown digest algorithm 'md5'"),
            (String(repeating: "ab", count: 32), "must look like"),
            ("sha256:" + String(repeating: "zz", count: 32), "not hex"),
            ("sha384:" + String(repeating: "ab", count: 32), "96 hex digits"),
            ("", "must look like"),
        ]
    )
    func rejects(text: String, reason: String) {
        #expect {
            try Digest(parsing: text)
        } throws: { error in
            guard let error = error as? UkeyCoreError else { return false }
            return error.code == .invalidDigest && error.reason.contains(reason)
        }
    }

    @Test("hashes equal the known SHA-256 test vector")
    func knownVector() {
        // FIPS 180-2 example: SHA-256("abc").
        #expect(
            Digest.of(Array("abc".utf8)).description
                == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
    }

    @Test("streaming in chunks gives the one-shot digest")
    func streaming() {
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for algorithm in HashAlgorithm.allCases {
            var hasher = StreamingHasher(algorithm)
            var offset = 0
            for size in [1, 7, 4096, 65_536, 100_000] where offset < data.count {
                let end = min(offset + size, data.count)
                data[offset..<end].withUnsafeBytes { hasher.update($0) }
                offset = end
            }
            #expect(hasher.finalize() == Digest.of(data, using: algorithm))
        }
    }
}
