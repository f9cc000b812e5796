import Foundation
import Crypto
import UkeyCore
import UkeySM
import X509

extension SoftToken: KeysRole {
    /// The enrolled policy signer, P-256 or SM2.
    public func policySigner() throws(TokenError) -> PolicySigner {
        guard let der = store[SoftRecordName.certificate(SoftRecordName.policySigner)] else {
            throw TokenError(.unknownCertificate, "the token has no policy signer")
        }
        return try PolicySigner(derEncoded: der)
    }

    public func certificate(named name: String) throws(TokenError) -> TokenCertificate {
        if name == SoftRecordName.policySigner {
            switch try policySigner() {
            case .p256(let certificate): return .x509(certificate)
            case .sm2(let certificate): return .sm2(certificate)
            }
        }
        let builtIn = TokenKey.allCases.map(\.rawValue) + [SoftRecordName.policySigner]
        if builtIn.contains(name) {
            guard let der = store[SoftRecordName.certificate(name)] else {
                throw TokenError(.unknownCertificate, "the token has no '\(name)' certificate")
            }
            if case .sm2 = try algorithm {
                do {
                    return .sm2(try SM2Certificate(derRepresentation: der))
                } catch {
                    throw TokenError(
                        .store,
                        "the '\(name)' certificate in the sealed store is not an SM2 certificate: \(error)"
                    )
                }
            }
            return .x509(try IdentityCA.certificate(der: der))
        }
        guard let user = try userRecord(name) else {
            throw TokenError(.unknownCertificate, "no certificate named '\(name)': not a token key and not a user")
        }
        if case .sm2 = try algorithm {
            do {
                return .sm2(try SM2Certificate(derRepresentation: user.certificate))
            } catch {
                throw TokenError(
                    .store,
                    "user '\(name)''s certificate in the sealed store is not an SM2 certificate: \(error)"
                )
            }
        }
        return .x509(try IdentityCA.certificate(der: user.certificate))
    }

    public func signAuditCheckpoint(_ checkpoint: [UInt8]) throws(TokenError) -> [UInt8] {
        try signingKey(.audit).signature(for: AuditCheckpoint.signingDomain + checkpoint)
    }

    /// Signs outside the actor, like quotes: the actor only hands out the user's key.
    /// The key signs `SigningContext.tokenSignMessage(digest:)`, never the caller's digest alone:
    /// ECDSA over its SHA-256 (P-256), or SM2-with-SM3 with the token's ID (SM2).
    public nonisolated func sign(asUser user: String, digest: [UInt8]) async throws(TokenError) -> [UInt8] {
        guard digest.count == SHA256.byteCount else {
            throw TokenError(
                .invalidArgument,
                "the digest to sign must be a 32-byte hash (SHA-256 or SM3), got \(digest.count)"
            )
        }
        return try await userKey(user).signature(for: SigningContext.tokenSignMessage(digest: digest))
    }

    func userKey(_ user: String) throws(TokenError) -> TokenSigningKey {
        if let cached = userKeys[user] { return cached }
        guard let record = try userRecord(user) else { throw TokenError(.unknownUser, "no user '\(user)'") }
        guard let stored = record.key else {
            throw TokenError(.invalidArgument, "user '\(user)' has no key in this token (it lives on their smart card)")
        }
        guard let key = TokenSigningKey(stored: stored, algorithm: try algorithm) else {
            throw TokenError(.store, "user '\(user)''s key in the sealed store is malformed")
        }
        userKeys[user] = key
        return key
    }

    public func random(count: Int) throws(TokenError) -> [UInt8] {
        guard (1...1024).contains(count) else {
            throw TokenError(.invalidArgument, "random bytes: ask for 1-1024, not \(count)")
        }
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Issues a new identity certificate for an existing user's key (soft) or for a CSR's key
    /// (a user whose key lives on a smart card; P-256 tokens only), replacing the stored one.
    /// Signed between two isolated steps; the second refuses if the user's record changed meanwhile.
    public nonisolated func issueCertificate(user: String, csrPEM: String?) async throws(TokenError) -> TokenCertificate
    {
        let (before, subjectKey, issuer) = try await prepareReissue(user: user, csrPEM: csrPEM)
        let certificate = try await issuer.issueIdentity(user, subjectKey: subjectKey)
        try await commitReissue(user: user, before: before, certificate: certificate, keepsKey: csrPEM == nil)
        return certificate
    }

    private func prepareReissue(
        user: String,
        csrPEM: String?
    ) throws(TokenError) -> ([UInt8], IdentitySubjectKey, IdentityIssuer) {
        try requireUnlocked()
        guard let raw = store[SoftRecordName.user(user)], try userRecord(user) != nil else {
            throw TokenError(.unknownUser, "no user '\(user)'")
        }
        let subjectKey: IdentitySubjectKey
        if let csrPEM {
            if case .sm2 = try algorithm {
                throw TokenError(
                    .invalidCSR,
                    "this token's keys are SM2: its user CA certifies the SM2 keys it makes for its users, and takes no CSR (a card's key is P-256: use a P-256 token for users with cards)"
                )
            }
            subjectKey = .x509(try IdentityCA.publicKey(fromCSR: csrPEM))
        } else if (try userRecord(user))?.key != nil {
            subjectKey = try userKey(user).subjectKey
        } else {
            throw TokenError(.invalidArgument, "user '\(user)' has no key in this token; give a CSR")
        }
        return (raw, subjectKey, try identityIssuer())
    }

    private func commitReissue(
        user: String,
        before: [UInt8],
        certificate: TokenCertificate,
        keepsKey: Bool
    ) throws(TokenError) {
        guard store[SoftRecordName.user(user)] == before, var record = try userRecord(user) else {
            throw TokenError(
                .invalidArgument,
                "user '\(user)' changed while the certificate was being issued; issue it again"
            )
        }
        if !keepsKey { record.key = nil }
        record.certificate = try certificate.derRepresentation
        try commit([SoftRecordName.user(user): try RecordCoding.encode(record)])
    }

    /// A certificate kept for a hardware key (see below), if one was issued.
    public func storedCertificate(named name: String) -> Certificate? {
        store[SoftRecordName.certificate(name)].flatMap { try? IdentityCA.certificate(der: $0) }
    }

    /// The root CA's certificate for a token key that lives outside the store (a TPM's attestation
    /// or audit key), kept in the store as `name`: issued on first use, and again only if the
    /// hardware's key changes (another TPM, a cleared one).
    /// `tpm2QuotesOnly`: the key is a TPM's attestation key, and its certificate says it vouches
    /// only for TPM2 quotes (`KeyPurpose.tpm2QuotesOID`); one stored without that is issued again.
    public nonisolated func certificate(
        forHardwareKey name: String,
        purpose: KeyPurpose,
        publicKey: P256.Signing.PublicKey,
        tpm2QuotesOnly: Bool = false
    ) async throws(TokenError) -> Certificate {
        if let stored = await storedCertificate(named: name, for: publicKey),
            KeyPurpose.vouchesOnlyForTPM2Quotes(stored) == tpm2QuotesOnly
        {
            return stored
        }
        let (ca, serial, now) = try await hardwareKeyIssuer()
        let certificate = try await IdentityCA.issue(
            commonName: "ukey \(name) \(serial)",
            subjectKey: Certificate.PublicKey(publicKey),
            purpose: purpose,
            caKey: ca.key,
            caCertificate: ca.certificate,
            now: now,
            validity: IdentityCA.defaultRootValidity,
            tpm2QuotesOnly: tpm2QuotesOnly
        )
        return try await keepHardwareCertificate(certificate, named: name, for: publicKey)
    }

    private func storedCertificate(named name: String, for publicKey: P256.Signing.PublicKey) -> Certificate? {
        guard let der = store[SoftRecordName.certificate(name)], let stored = try? IdentityCA.certificate(der: der),
            P256.Signing.PublicKey(stored.publicKey)?.rawRepresentation == publicKey.rawRepresentation
        else { return nil }
        return stored
    }

    private func hardwareKeyIssuer() throws(TokenError) -> (
        ca: (key: Certificate.PrivateKey, certificate: Certificate), serial: String, now: Date
    ) {
        (try subordinateCA(.tokenKeys), token.serial, configuration.clock())
    }

    /// Stores a new hardware key's certificate, unless one for the same key was stored while it
    /// was being signed (that one is kept: the first is the one verifiers may have seen).
    private func keepHardwareCertificate(
        _ certificate: Certificate,
        named name: String,
        for publicKey: P256.Signing.PublicKey
    ) throws(TokenError) -> Certificate {
        if let stored = storedCertificate(named: name, for: publicKey) { return stored }
        try commit([SoftRecordName.certificate(name): try IdentityCA.der(certificate)])
        return certificate
    }

    /// What issues users' identity certificates, taken from the store in an isolated step and
    /// used outside it: the user CA in the token's algorithm.
    func identityIssuer() throws(TokenError) -> IdentityIssuer {
        let now = configuration.clock()
        let validity = configuration.userCertificateValidity
        guard case .sm2(let id) = try algorithm else {
            let ca = try subordinateCA(.users)
            return .x509(key: ca.key, certificate: ca.certificate, now: now, validity: validity)
        }
        guard let key = store[SoftRecordName.key(.userCA)].flatMap({ try? SM2PrivateKey(derRepresentation: $0) }),
            let certificate = store[SoftRecordName.certificate(TokenKey.userCA.rawValue)].flatMap({
                try? SM2Certificate(derRepresentation: $0)
            })
        else {
            throw TokenError(.store, "the sealed store lacks the SM2 user CA's key or certificate, or one is malformed")
        }
        return .sm2(key: key, certificate: certificate, id: id, now: now, validity: validity)
    }
}
