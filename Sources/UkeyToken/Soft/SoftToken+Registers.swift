import Crypto
import UkeyCore
import X509

extension SoftToken: RegistersRole {
    public func extend(register: Int, digest: UkeyCore.Digest) throws(TokenError) {
        do {
            try registers.extend(register, with: digest)
        } catch {
            throw TokenError(.invalidArgument, error.reason)
        }
    }

    public func read(register: Int, bank: HashAlgorithm) throws(TokenError) -> UkeyCore.Digest {
        do {
            return try registers.value(register, in: bank)
        } catch {
            throw TokenError(.invalidArgument, error.reason)
        }
    }

    /// A new boot: registers zeroed, the boot counter advanced durably.
    public func reset(bootID: String) throws(TokenError) -> UInt64 {
        var next = token
        next.bootCounter += 1
        try commit([SoftRecordName.token: try RecordCoding.encode(next)])
        token = next
        registers = RegisterSet(algorithms: configuration.banks)
        self.bootID = bootID
        return next.bootCounter
    }

    /// A "ukey-v1" quote of one bank (any configured one), signed by the attestation key.
    ///
    /// The actor only snapshots the registers and builds the bytes; the signature (the costly
    /// part) is computed outside it, so concurrent quotes use every core and never hold up a PIN
    /// check or a measurement.
    public nonisolated func quote(
        nonce: [UInt8],
        registers selection: [Int],
        eventLog: UkeyCore.Digest,
        bank: HashAlgorithm
    ) async throws(TokenError) -> SignedQuote {
        let (bytes, key, certificatePEM) = try await quoteMaterial(
            nonce: nonce,
            registers: selection,
            eventLog: eventLog,
            bank: bank
        )
        return SignedQuote(
            format: UkeyQuote.format,
            quote: bytes,
            signature: try key.signature(for: bytes),
            certificatePEM: certificatePEM,
            attestationKeyPEM: try key.publicKeyPEM,
            algorithm: key.algorithm
        )
    }

    public func attestationCertificate() throws(TokenError) -> TokenCertificate {
        try certificate(named: TokenKey.attestation.rawValue)
    }

    /// Soft registers are plain memory: any of the 24 may be used.
    public nonisolated var usableRegisters: Set<Int> { Set(0..<ExpectedSet.registerCount) }
    /// Rebuilt from the boot journal when ukeyd restarts.
    public nonisolated var registersPersist: Bool { false }
    /// The configured banks (`[token] banks`), SHA-256 always among them.
    public nonisolated var banks: [HashAlgorithm] { Array(configuration.banks.union([.sha256])).sorted() }
    public nonisolated func missingBank(_ algorithm: HashAlgorithm) async -> String {
        "the soft registers have the banks \(banks.map(\.rawValue).joined(separator: ", ")); add \"\(algorithm.rawValue)\" to [token] banks (or --banks) and restart ukeyd"
    }

    /// The quote bytes over a consistent snapshot of the registers, with the key to sign them.
    func quoteMaterial(
        nonce: [UInt8],
        registers selection: [Int],
        eventLog: UkeyCore.Digest,
        bank: HashAlgorithm
    ) throws(TokenError) -> (bytes: [UInt8], key: TokenSigningKey, certificatePEM: String) {
        let bytes = try quoteBody(nonce: nonce, registers: selection, eventLog: eventLog, bank: bank)
        if attestationPEM == nil {
            attestationPEM = try certificate(named: TokenKey.attestation.rawValue).pemRepresentation
        }
        return (bytes, try signingKey(.attestation), attestationPEM!)
    }

    /// A `ukey-v1` quote's bytes over a consistent snapshot of these registers, for a key held
    /// elsewhere (a card's) to sign.
    public func quoteBody(
        nonce: [UInt8],
        registers selection: [Int],
        eventLog: UkeyCore.Digest,
        bank: HashAlgorithm = .sha256
    ) throws(TokenError) -> [UInt8] {
        try UkeyQuote.validate(nonce: nonce, bootID: bootID, registers: selection)
        guard let values = registers.banks[bank]?.values else {
            throw TokenError(
                .invalidArgument,
                "no \(bank.rawValue) bank to quote: the soft registers have \(banks.map(\.rawValue).joined(separator: ", "))"
            )
        }
        let quoted = selection.sorted().map { index in (index: index, value: values[index]) }
        let quote = UkeyQuote(
            nonce: nonce,
            bootID: bootID,
            bootCounter: token.bootCounter,
            time: UInt64(max(0, configuration.clock().timeIntervalSince1970)),
            bank: bank,
            registers: quoted,
            eventLog: eventLog
        )
        return quote.encoded()
    }
}
