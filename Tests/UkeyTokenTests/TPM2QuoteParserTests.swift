import Crypto
import Testing
import UkeyTesting
import UkeyCore
import UkeyToken

/// `TPM2Quote` parses untrusted TPMS_ATTEST and TPMT_SIGNATURE bytes (from a verifier's input).
@Suite("tpm2 quote parsing")
struct TPM2QuoteParserTests {
    /// A TPMS_ATTEST as a TPM writes it for a quote of `pcrs` (big-endian throughout).
    static func attest(nonce: [UInt8], pcrs: [Int], digest: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0xff, 0x54, 0x43, 0x47, 0x80, 0x18]
        func u16(_ v: Int) { out += [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        u16(34)
        out += [0x00, 0x0b] + [UInt8](repeating: 0xaa, count: 32)  // qualifiedSigner
        u16(nonce.count)
        out += nonce
        out += [UInt8](repeating: 1, count: 8) + [0, 0, 0, 2] + [0, 0, 0, 3] + [1]  // clockInfo
        out += [UInt8](repeating: 9, count: 8)  // firmwareVersion
        out += [0, 0, 0, 1, 0x00, 0x0b, 3]
        var mask: [UInt8] = [0, 0, 0]
        for pcr in pcrs { mask[pcr / 8] |= 1 << (pcr % 8) }
        out += mask
        u16(digest.count)
        out += digest
        return out
    }

    @Test("a well-formed quote parses: nonce, clock, PCR selection, digest")
    func parses() throws {
        let digest = TPM2Quote.pcrDigest(of: [
            (9, [UInt8](repeating: 2, count: 32)), (8, [UInt8](repeating: 1, count: 32)),
        ])
        #expect(
            digest == Array(SHA256.hash(data: [UInt8](repeating: 1, count: 32) + [UInt8](repeating: 2, count: 32))),
            "ascending by index"
        )
        let quote = try TPM2Quote(parsing: Self.attest(nonce: [1, 2, 3], pcrs: [8, 9, 23], digest: digest))
        #expect(quote.nonce == [1, 2, 3] && quote.pcrs == [8, 9, 23] && quote.pcrDigest == digest)
        #expect(quote.resetCount == 2 && quote.restartCount == 3)
        #expect(QuoteVerifier.isTPM2(Self.attest(nonce: [1], pcrs: [8], digest: digest)))
        #expect(!QuoteVerifier.isTPM2(Array("UKEYQT01".utf8)))
    }

    @Test("every truncation, every trailing byte and random garbage are refused with a clear error, never a crash")
    func fuzz() {
        let good = Self.attest(nonce: Array(0..<20), pcrs: [8, 13], digest: [UInt8](repeating: 5, count: 32))
        for length in 0..<good.count {
            #expect(throws: TokenError.self) { try TPM2Quote(parsing: Array(good.prefix(length))) }
        }
        #expect(throws: TokenError.self) { try TPM2Quote(parsing: good + [0]) }
        #expect(throws: TokenError.self) { try TPM2Quote(parsing: [UInt8](repeating: 0, count: 5000)) }
        var generator = SeededRandom.forTest()
        for _ in 0..<5000 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            // A quote is only taken with its magic and type intact, and then selects real PCRs in order.
            if let quote = try? TPM2Quote(parsing: bytes) {
                #expect(Array(bytes.prefix(6)) == Array(good.prefix(6)), "\(generator)")
                #expect(
                    quote.pcrs == quote.pcrs.sorted() && Set(quote.pcrs).count == quote.pcrs.count
                        && quote.pcrs.allSatisfy { (0..<32).contains($0) },
                    "\(generator)"
                )
            }
            _ = try? TPM2Quote.ecdsaSignature(parsing: Array(bytes.prefix(Int.random(in: 0...80, using: &generator))))
        }
        // Any nonce, selection and digest a TPM writes is read back exactly.
        for _ in 0..<2000 {
            let nonce = (0..<Int.random(in: 0...64, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            let pcrs = (0..<24).filter { _ in Bool.random(using: &generator) }
            let digest = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let quote = try? TPM2Quote(parsing: Self.attest(nonce: nonce, pcrs: pcrs, digest: digest))
            #expect(quote?.nonce == nonce && quote?.pcrs == pcrs && quote?.pcrDigest == digest, "\(generator)")
        }
        #expect(throws: TokenError.self) {
            try TPM2Quote.ecdsaSignature(parsing: [0x00, 0x18, 0x00, 0x0b, 0x00, 0x40])
        }
        // The SHA-256 bank selected twice (fuzzing's finding): refused, not read as repeated PCRs.
        var twice = Self.attest(nonce: [1], pcrs: [8], digest: [UInt8](repeating: 5, count: 32))
        let selection = twice.firstRange(of: [0, 0, 0, 1, 0x00, 0x0b, 3])!
        twice.replaceSubrange(selection, with: [0, 0, 0, 2, 0x00, 0x0b, 3, 0, 1, 0, 0x00, 0x0b, 3])
        #expect { try TPM2Quote(parsing: twice) } throws: { "\($0)".contains("SHA-256 bank twice") }
    }

    @Test("a TPMT_SIGNATURE's r and s become an ECDSA signature that verifies; another algorithm is refused")
    func signature() throws {
        let key = P256.Signing.PrivateKey()
        let message = Array("attest".utf8)
        let raw = Array(try key.signature(for: SHA256.hash(data: message)).rawRepresentation)
        let marshalled: [UInt8] =
            [0x00, 0x18, 0x00, 0x0b, 0x00, 0x20] + raw.prefix(32) + [0x00, 0x20] + raw.suffix(32)
        let parsed = try TPM2Quote.ecdsaSignature(parsing: marshalled)
        #expect(key.publicKey.isValidSignature(parsed, for: SHA256.hash(data: message)))
        #expect(throws: TokenError.self) {
            try TPM2Quote.ecdsaSignature(parsing: [0x00, 0x14] + marshalled.dropFirst(2))
        }
    }
}
