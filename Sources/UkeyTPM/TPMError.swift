import CTSS2

/// A failure from the TPM or the TSS, with tpm2-tss's own decoding of the response code kept.
public struct TPMError: Error, Sendable, CustomStringConvertible {
    /// The TSS2_RC, or 0 for failures found on this side.
    public let code: UInt32
    /// `Tss2_RC_Decode`'s text, e.g. "tpm:warn(2.0): the TPM was not able to start the command".
    public let decoded: String
    /// What was being done.
    public let operation: String

    /// The TPM asked to be asked again (RETRY, YIELDED, TESTING): the command did nothing.
    public var retryable: Bool {
        let format1Free = code & 0xFFFF  // without the TSS layer
        return [UKEY_TPM2_RC_RETRY, UKEY_TPM2_RC_YIELDED, UKEY_TPM2_RC_TESTING].contains(format1Free)
    }

    /// The failure came from below the TPM (the transport, the TSS), not from the TPM's own
    /// checks: the TPM may be gone, and the connection is not to be trusted any more.
    public var isTransport: Bool {
        code != 0 && code & UKEY_TSS2_RC_LAYER_MASK != 0
    }

    init(_ code: TSS2_RC, _ operation: String) {
        self.code = code
        self.decoded = String(cString: Tss2_RC_Decode(code))
        self.operation = operation
    }

    init(local reason: String, _ operation: String) {
        self.code = 0
        self.decoded = reason
        self.operation = operation
    }

    public var description: String {
        code == 0 ? "\(operation): \(decoded)" : "\(operation): \(decoded) (0x\(String(code, radix: 16)))"
    }
}

@inline(__always)
func check(_ rc: TSS2_RC, _ operation: @autoclosure () -> String) throws(TPMError) {
    guard rc == 0 else { throw TPMError(rc, operation()) }
}
