import Crypto
import UkeyCore

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

    /// A "ukey-v1" quote of the SHA-256 bank, signed by the attestation key.
    public func quote(nonce: [UInt8], registers selection: [Int], eventLog: UkeyCore.Digest) throws(TokenError) -> SignedQuote {
        try UkeyQuote.validate(nonce: nonce, bootID: bootID, registers: selection)
        let bank = HashAlgorithm.sha256
        let values = selection.sorted().map { index in (index: index, value: registers.banks[bank]!.values[index]) }
        let quote = UkeyQuote(
            nonce: nonce,
            bootID: bootID,
            bootCounter: token.bootCounter,
            time: UInt64(max(0, configuration.clock().timeIntervalSince1970)),
            bank: bank,
            registers: values,
            eventLog: eventLog
        )
        let bytes = quote.encoded()
        let signature: P256.Signing.ECDSASignature
        do {
            signature = try privateKey(.attestation).signature(for: SHA256.hash(data: bytes))
        } catch let error as TokenError {
            throw error
        } catch {
            throw TokenError(.crypto, "the attestation key cannot sign: \(error)")
        }
        let certificate = try certificate(named: TokenKey.attestation.rawValue)
        return SignedQuote(
            format: UkeyQuote.format,
            quote: bytes,
            signature: Array(signature.derRepresentation),
            certificatePEM: try IdentityCA.pem(certificate)
        )
    }
}
