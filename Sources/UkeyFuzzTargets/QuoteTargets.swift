import UkeyCore
import UkeyToken

extension FuzzTarget {
    /// A TPM's TPMS_ATTEST and TPMT_SIGNATURE, as a verifier receives them.
    static let tpm2Quote = FuzzTarget(
        name: "tpm2-quote",
        property:
            "a quote is taken only with its magic and quote type, and selects PCRs within its bitmap, ascending, once each",
        check: { bytes throws(FuzzFailure) in
            if let quote = try? TPM2Quote(parsing: bytes) {
                try require(
                    Array(bytes.prefix(6)) == [0xff, 0x54, 0x43, 0x47, 0x80, 0x18],
                    "taken without the TPM_GENERATED magic and TPM_ST_ATTEST_QUOTE"
                )
                try require(
                    quote.pcrs == quote.pcrs.sorted() && Set(quote.pcrs).count == quote.pcrs.count
                        && quote.pcrs.allSatisfy { (0..<32).contains($0) },
                    "PCR selection \(quote.pcrs)"
                )
            }
            if let signature = try? TPM2Quote.ecdsaSignature(parsing: bytes) {
                try require(
                    signature.rawRepresentation.count == 64,
                    "an ECDSA signature of \(signature.rawRepresentation.count) bytes"
                )
            }
        },
        seeds: {
            var attest: [UInt8] =
                [0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0x00, 0x22, 0x00, 0x0b] + [UInt8](repeating: 0xaa, count: 32)
            attest +=
                [0x00, 0x03, 1, 2, 3] + [UInt8](repeating: 1, count: 8) + [0, 0, 0, 2, 0, 0, 0, 3, 1]
                + [UInt8](repeating: 9, count: 8)
            attest += [0, 0, 0, 1, 0x00, 0x0b, 3, 0, 0x03, 0x80, 0x00, 0x20] + [UInt8](repeating: 5, count: 32)
            let signature: [UInt8] =
                [0x00, 0x18, 0x00, 0x0b, 0x00, 0x20] + [UInt8](repeating: 7, count: 32) + [0x00, 0x20]
                + [UInt8](repeating: 8, count: 32)
            return [attest, signature]
        }
    )

    /// The soft token's "ukey-v1" quote (docs/quote-format.md): a canonical format.
    static let ukeyQuote = FuzzTarget(
        name: "ukey-quote",
        property: "what is taken re-encodes to exactly the bytes it was read from (one encoding per quote)",
        check: { bytes throws(FuzzFailure) in
            guard let quote = try? UkeyQuote(parsing: bytes) else { return }
            try require(quote.encoded() == bytes, "a quote of \(bytes.count) bytes re-encodes to other bytes")
        },
        seeds: {
            let quote = UkeyQuote(
                nonce: [1, 2, 3, 4],
                bootID: "boot-7",
                bootCounter: 1,
                time: 1_800_000_000,
                bank: .sha256,
                registers: [(8, [UInt8](repeating: 1, count: 32)), (13, [UInt8](repeating: 2, count: 32))],
                eventLog: Digest.of(Array("log".utf8))
            )
            return [quote.encoded()]
        }
    )
}
