import CTSS2
import Glibc
import UkeyConcurrency
import UkeyToken

/// A TPM 2.0 through tpm2-tss: the only owner of the daemon's ESYS context, so commands never
/// interleave. It runs on a thread of its own (`QueueExecutor`).
///
/// A TPM that goes away (swtpm stopped, a device error) fails the command in progress with a
/// clear `TPMError`; the context is dropped and the next command connects again, so the TPM's
/// return needs no restart of ukeyd.
public actor TPM {
    private var context: TPMContext?
    private nonisolated let executor = QueueExecutor(label: "ukey.tpm")
    /// The TCTI it was opened with, e.g. `swtpm:path=/run/swtpm/sock` or `device:/dev/tpmrm0`.
    public nonisolated let tcti: String
    /// What makes ukey's objects in this TPM ukeyd's alone: every key's template and auth, the
    /// sealed store key's auth and the counter's are derived from it (`TPMObjectSecret`).
    nonisolated let secret: TPMObjectSecret

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Connects now, so a TPM that is not there is reported at start.
    public init(tcti: String, secret: TPMObjectSecret) throws(TPMError) {
        self.context = try TPMContext(tcti: tcti, secret: secret)
        self.tcti = tcti
        self.secret = secret
    }

    /// Runs one operation on the context, connecting first if the last one was lost. A TPM that
    /// asks to be asked again (RETRY, YIELDED, TESTING: the command did nothing) is, a few times.
    func withContext<T>(_ body: (TPMContext) throws(TPMError) -> T) throws(TPMError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            let current: TPMContext
            if let context {
                current = context
            } else {
                current = try TPMContext(tcti: tcti, secret: secret)
                context = current
            }
            do {
                return try body(current)
            } catch {
                // A transport or TSS failure leaves the context in an unknown state: start afresh.
                if error.isTransport { context = nil }
                guard error.retryable, attempt < Self.attempts else { throw error }
                usleep(UInt32(attempt) * 10_000)
            }
        }
    }

    /// Runs `body` on the TPM's own thread between its other commands, and waits: for a caller
    /// that cannot await (see `QueueExecutor.sync`). Never call it from the TPM's thread.
    public nonisolated func blocking<T: Sendable>(
        _ body: @Sendable (isolated TPM) throws(TPMError) -> T
    ) throws(TPMError) -> T {
        let result: Result<T, TPMError> = executor.sync {
            self.assumeIsolated { tpm in Result { () throws(TPMError) in try body(tpm) } }
        }
        return try result.get()
    }

    /// Tries for a command the TPM asks to be retried.
    static let attempts = 4

    public func extend(pcr: Int, sha256: [UInt8]) throws(TPMError) {
        guard (0...23).contains(pcr) else { throw TPMError(local: "PCR \(pcr) does not exist (0-23)", "PCR_Extend") }
        try withContext { context throws(TPMError) in try context.extend(pcr: pcr, sha256: sha256) }
    }

    /// Extends one PCR in several banks at once: `digests` pairs a bank's TPM_ALG_ID with a digest
    /// of that algorithm's size.
    public func extend(pcr: Int, digests: [(algorithm: UInt16, bytes: [UInt8])]) throws(TPMError) {
        guard (0...23).contains(pcr) else { throw TPMError(local: "PCR \(pcr) does not exist (0-23)", "PCR_Extend") }
        try withContext { context throws(TPMError) in try context.extend(pcr: pcr, digests: digests) }
    }

    /// Extends SHA-256 PCRs in order, stopping at the first failure: how many were done, and the
    /// failure. One hop to the TPM's thread for the lot.
    public func extend(_ batch: [(pcr: Int, sha256: [UInt8])]) -> (done: Int, failure: TPMError?) {
        extend(batch.map { (pcr: $0.pcr, digests: [(algorithm: UInt16(0x000B), bytes: $0.sha256)]) })
    }

    /// The same with each item's digests for several banks (see `extend(pcr:digests:)`).
    public func extend(
        _ batch: [(pcr: Int, digests: [(algorithm: UInt16, bytes: [UInt8])])]
    ) -> (done: Int, failure: TPMError?) {
        for (index, item) in batch.enumerated() {
            do {
                try extend(pcr: item.pcr, digests: item.digests)
            } catch {
                return (index, error)
            }
        }
        return (batch.count, nil)
    }

    /// The PCR banks the TPM has allocated (TPM2_GetCapability, TPM_CAP_PCRS): TPM_ALG_IDs of the
    /// banks with at least one PCR selected. swtpm's libtpms has no SM3 bank; some TPMs do.
    public func allocatedBanks() throws(TPMError) -> [UInt16] {
        try withContext { context throws(TPMError) in try context.allocatedBanks() }
    }

    public func read(pcr: Int) throws(TPMError) -> [UInt8] {
        try read(pcr: pcr, bank: 0x000B)
    }

    /// A PCR's value in the bank with this TPM_ALG_ID.
    public func read(pcr: Int, bank: UInt16) throws(TPMError) -> [UInt8] {
        guard (0...23).contains(pcr) else { throw TPMError(local: "PCR \(pcr) does not exist (0-23)", "PCR_Read") }
        return try withContext { context throws(TPMError) in try context.read(pcr: pcr, bank: bank) }
    }

    /// A TPM2_Quote of SHA-256 PCRs over `nonce` by the attestation key.
    public func quote(nonce: [UInt8], pcrs: [Int]) throws(TPMError) -> TPMQuote {
        guard !pcrs.isEmpty, pcrs.allSatisfy({ (0...23).contains($0) }) else {
            throw TPMError(local: "quote PCRs in 0-23", "Quote")
        }
        return try withContext { context throws(TPMError) in try context.quote(nonce: nonce, pcrs: pcrs) }
    }

    /// The attestation key's public point (uncompressed SEC1), derived by this TPM from a fixed template.
    public func attestationKey() throws(TPMError) -> [UInt8] {
        try withContext { context throws(TPMError) in try context.loadedAttestationKey().point }
    }

    /// Signs a SHA-256 digest with the TPM's audit key; returns the raw r || s and the key's point.
    public func signWithAuditKey(sha256 digest: [UInt8]) throws(TPMError) -> (signature: [UInt8], publicKey: [UInt8]) {
        try withContext { context throws(TPMError) in try context.sign(with: .audit, sha256: digest) }
    }

    /// The audit key's public point (uncompressed SEC1).
    public func auditKey() throws(TPMError) -> [UInt8] {
        try withContext { context throws(TPMError) in try context.signingKeyPoint(.audit) }
    }

    /// Signs a SHA-256 digest with one of the TPM's CA keys; returns the raw r || s and the key's point.
    public func signWithCertificateAuthorityKey(
        _ authority: CertificateAuthorityKey,
        sha256 digest: [UInt8]
    ) throws(TPMError) -> (signature: [UInt8], publicKey: [UInt8]) {
        try withContext { context throws(TPMError) in
            try context.sign(with: .certificateAuthority(authority), sha256: digest)
        }
    }

    /// A CA key's public point (uncompressed SEC1).
    public func certificateAuthorityKey(_ authority: CertificateAuthorityKey) throws(TPMError) -> [UInt8] {
        try withContext { context throws(TPMError) in try context.signingKeyPoint(.certificateAuthority(authority)) }
    }

    /// ukey's monotonic counter (an NV counter index), defined on first use.
    public func counterValue() throws(TPMError) -> UInt64 {
        try withContext { context throws(TPMError) in try context.counterValue() }
    }

    /// Adds one to ukey's counter; returns the new value.
    @discardableResult
    public func incrementCounter() throws(TPMError) -> UInt64 {
        try withContext { context throws(TPMError) in try context.incrementCounter() }
    }

    /// Takes the counter for a new token (Initialize): an earlier token's index is undefined
    /// (`TPMContext.undefineCounterForNewToken`) and, on a fresh context, defined with this
    /// token's authorization and started. The counter's value.
    public func defineCounterForNewToken() throws(TPMError) -> UInt64 {
        try withContext { context throws(TPMError) in try context.undefineCounterForNewToken() }
        context = nil
        return try counterValue()
    }

    /// Seals a secret (the store key) to this TPM; `unseal` gives it back on this TPM only.
    public func seal(_ secret: [UInt8]) throws(TPMError) -> [UInt8] {
        try withContext { context throws(TPMError) in try context.seal(secret) }
    }

    public func unseal(_ blob: [UInt8]) throws(TPMError) -> [UInt8] {
        try withContext { context throws(TPMError) in try context.unseal(blob) }
    }

    public func random(count: Int) throws(TPMError) -> [UInt8] {
        guard (1...4096).contains(count) else {
            throw TPMError(local: "ask for 1-4096 bytes, not \(count)", "GetRandom")
        }
        return try withContext { context throws(TPMError) in try context.random(count: count) }
    }
}
