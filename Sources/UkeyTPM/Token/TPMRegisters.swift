import UkeyCore
import UkeyToken
import X509

/// The registers role on a TPM: measurements extend real PCRs (8-16 and 23; 0-7 are the
/// firmware's, 17-22 need a locality ukeyd does not have) in every bank the TPM has allocated and
/// ukey knows (SHA-256, SHA-384, SHA-512, SM3: asked of the TPM, never assumed), all banks in one
/// PCR_Extend; quotes are TPM2_Quote of the SHA-256 PCRs by the TPM's attestation key, certified by
/// the token's root CA. (A SHA-1 bank, which ukey does not compute, is left alone.)
public struct TPMRegisters: RegistersRole, TPMServedRole {
    /// The PCRs a policy may name on the TPM: the OS range 8-15, debug 16 and application 23.
    public static let usablePCRs: Set<Int> = Set(8...16).union([23])

    let records: SoftToken
    let tpm: TPM
    let certificates = CertificateCache()
    /// The banks every measurement extends, smallest TPM_ALG_ID first (SHA-256 always).
    public let banks: [HashAlgorithm]

    /// The PCRs a policy may use here: `usablePCRs`, or fewer (`[tpm] registers`).
    public let usableRegisters: Set<Int>

    public init(records: SoftToken, tpm: TPM, banks: [HashAlgorithm] = [.sha256], usable: Set<Int>? = nil) {
        self.records = records
        self.tpm = tpm
        self.usableRegisters = usable.map { $0.intersection(Self.usablePCRs) } ?? Self.usablePCRs
        self.banks = Array(Set(banks).union([.sha256])).sorted { $0.tcgAlgorithmID < $1.tcgAlgorithmID }
    }

    /// The banks of `tpm` that ukey extends: its allocated banks (TPM2_GetCapability) that ukey
    /// knows. A TPM without a SHA-256 bank is refused: ukey's quotes and journal check need it.
    public static func banks(of tpm: TPM) throws(TokenError) -> [HashAlgorithm] {
        let allocated: [UInt16]
        do {
            allocated = try tpm.blocking { tpm throws(TPMError) in try tpm.allocatedBanks() }
        } catch {
            throw TokenError(.unavailable, "the TPM did not say which PCR banks it has: \(error)")
        }
        guard allocated.contains(HashAlgorithm.sha256.tcgAlgorithmID) else {
            throw TokenError(
                .unavailable,
                "the TPM has no SHA-256 PCR bank allocated; allocate one (tpm2_pcrallocate sha256:all) and restart the host"
            )
        }
        return allocated.compactMap(HashAlgorithm.init(tcgAlgorithmID:))
    }

    /// PCRs reset only with the host: the daemon checks them against its journal.
    public var registersPersist: Bool { true }

    /// Says which banks this TPM has (TPM2_GetCapability), not what TPMs usually have.
    public func missingBank(_ algorithm: HashAlgorithm) async -> String {
        let names: [UInt16: String] = [
            0x0004: "sha1", 0x000B: "sha256", 0x000C: "sha384", 0x000D: "sha512", 0x0012: "sm3_256",
        ]
        guard let allocated = try? await tpm.allocatedBanks() else {
            return "the TPM did not say which PCR banks it has"
        }
        let list = allocated.map { names[$0] ?? String(format: "0x%04x", $0) }.joined(separator: ", ")
        if allocated.contains(algorithm.tcgAlgorithmID) {
            return
                "this TPM has an \(algorithm.rawValue) PCR bank (its banks: \(list)), allocated after ukeyd started: restart ukeyd"
        }
        return
            "this TPM has no \(algorithm.rawValue) PCR bank (TPM2_GetCapability lists \(list))\(algorithm == .sm3 ? "; swtpm's libtpms is built without SM3" : "")"
    }

    public func extend(register: Int, digest: Digest) async throws(TokenError) {
        guard usableRegisters.contains(register) else {
            throw TokenError(.invalidArgument, "PCR \(register) is not ukey's to extend (it may use 8-16 and 23)")
        }
        let digests = measurements(digest)
        try await tpmCall { () async throws(TPMError) in try await tpm.extend(pcr: register, digests: digests) }
    }

    /// A measurement as each bank takes it (`Digest.measurement(for:)`), with the bank's TPM_ALG_ID.
    func measurements(_ digest: Digest) -> [(algorithm: UInt16, bytes: [UInt8])] {
        banks.map { (algorithm: $0.tcgAlgorithmID, bytes: digest.measurement(for: $0)) }
    }

    public func extend(_ batch: [(register: Int, digest: Digest)]) async -> (done: Int, failure: TokenError?) {
        // Registers ukey may not extend end the batch there, like a failed command.
        let usable = batch.prefix { usableRegisters.contains($0.register) }
        let (done, failure) = await tpm.extend(usable.map { (pcr: $0.register, digests: measurements($0.digest)) })
        if let failure {
            return (done, tokenError(failure))
        }
        if usable.count < batch.count {
            return (
                done,
                TokenError(
                    .invalidArgument,
                    "PCR \(batch[usable.count].register) is not ukey's to extend (it may use 8-16 and 23)"
                )
            )
        }
        return (done, nil)
    }

    public func read(register: Int, bank: HashAlgorithm) async throws(TokenError) -> Digest {
        guard banks.contains(bank) else {
            throw TokenError(
                .invalidArgument,
                "ukey extends the TPM's \(banks.map(\.rawValue).joined(separator: ", ")) banks, not \(bank.rawValue)"
            )
        }
        guard (0...23).contains(register) else {
            throw TokenError(.invalidArgument, "PCR \(register) does not exist (0-23)")
        }
        let bytes = try await tpmCall { () async throws(TPMError) in
            try await tpm.read(pcr: register, bank: bank.tcgAlgorithmID)
        }
        do {
            return try Digest(algorithm: bank, bytes: bytes)
        } catch {
            throw TokenError(.unavailable, "the TPM returned a malformed PCR value")
        }
    }

    /// A new boot session. PCRs reset only when the host (and so the TPM) restarts: the boot
    /// counter and boot id move on, and the daemon keeps the earlier measurements in the event
    /// log, which therefore still replays to the PCRs.
    public func reset(bootID: String) async throws(TokenError) -> UInt64 {
        try await records.reset(bootID: bootID)
    }

    /// A TPM2_Quote ("tpm2" format): TPMS_ATTEST, the TPMT_SIGNATURE, the AK's certificate from
    /// the root CA and the AK as a PEM public key. The event log is bound by replay, not by digest.
    public func quote(
        nonce: [UInt8],
        registers: [Int],
        eventLog: Digest,
        bank: HashAlgorithm
    ) async throws(TokenError) -> SignedQuote {
        try UkeyQuote.validate(nonce: nonce, bootID: "tpm", registers: registers)
        guard bank == .sha256 else {
            throw TokenError(
                .invalidArgument,
                "no \(bank.rawValue) bank to quote: ukey extends and quotes the TPM's SHA-256 PCRs"
            )
        }
        let quote = try await tpmCall { () async throws(TPMError) in try await tpm.quote(nonce: nonce, pcrs: registers)
        }
        let (certificate, keyPEM) = try await hardwareCertificate("tpm-attestation", point: quote.attestationKey)
        return SignedQuote(
            format: "tpm2",
            quote: quote.attest,
            signature: quote.signature,
            certificatePEM: certificate,
            attestationKeyPEM: keyPEM
        )
    }

    public func attestationCertificate() async throws(TokenError) -> TokenCertificate {
        .x509(
            try await hardwareCertificate("tpm-attestation", tokenKey: .attestation) { () async throws(TPMError) in
                try await tpm.attestationKey()
            }
        )
    }
}
