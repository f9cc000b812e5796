import Testing
@testable import UkeyTPM

@Suite("TPM response codes")
struct TPMErrorTests {
    @Test(
        "RETRY, YIELDED and TESTING are retryable; a failure is not; transport errors are told apart; tpm2-tss's decoding is kept"
    )
    func classification() {
        for code: UInt32 in [0x922, 0x908, 0x90A] {
            #expect(TPMError(code, "PCR_Extend").retryable, "0x\(String(code, radix: 16))")
            #expect(!TPMError(code, "PCR_Extend").isTransport)
        }
        let failure = TPMError(0x101, "Quote")
        #expect(!failure.retryable && !failure.isTransport)
        #expect(failure.description.contains("Quote") && failure.description.contains("0x101"))
        let io = TPMError(0xA000A, "GetRandom")
        #expect(io.isTransport && !io.retryable)
        #expect(io.decoded.contains("tcti"), "\(io.decoded)")
        #expect(!TPMError(local: "bad input", "Sign").isTransport)
    }
}
