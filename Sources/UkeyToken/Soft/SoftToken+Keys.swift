import Crypto
import UkeyCore
import X509

extension SoftToken: KeysRole {
    public func certificate(named name: String) throws(TokenError) -> Certificate {
        let builtIn = TokenKey.allCases.map(\.rawValue) + [SoftRecordName.policySigner]
        if builtIn.contains(name) {
            guard let der = store[SoftRecordName.certificate(name)] else {
                throw TokenError(.unknownCertificate, "the token has no '\(name)' certificate")
            }
            return try IdentityCA.certificate(der: der)
        }
        guard let user = try userRecord(name) else {
            throw TokenError(.unknownCertificate, "no certificate named '\(name)': not a token key and not a user")
        }
        return try IdentityCA.certificate(der: user.certificate)
    }

    public func signAuditCheckpoint(_ checkpoint: [UInt8]) throws(TokenError) -> [UInt8] {
        try sign(AuditCheckpoint.signingDomain + checkpoint, with: privateKey(.audit))
    }

    /// Signs outside the actor, like quotes: the actor only hands out the user's key.
    /// The key signs `SigningContext.tokenSignMessage(digest:)`, never the caller's digest alone.
    public nonisolated func sign(asUser user: String, digest: [UInt8]) async throws(TokenError) -> [UInt8] {
        guard digest.count == SHA256.byteCount else {
            throw TokenError(.invalidArgument, "the digest to sign must be a SHA-256 hash (32 bytes), got \(digest.count)")
        }
        let key = try await userKey(user)
        do {
            return Array(try key.signature(for: SigningContext.tokenSignMessage(digest: digest)).derRepresentation)
        } catch {
            throw TokenError(.crypto, "signing failed: \(error)")
        }
    }

    func userKey(_ user: String) throws(TokenError) -> P256.Signing.PrivateKey {
        if let cached = userKeys[user] { return cached }
        guard let record = try userRecord(user) else { throw TokenError(.unknownUser, "no user '\(user)'") }
        guard let raw = record.key else {
            throw TokenError(.invalidArgument, "user '\(user)' has no key in this token (it lives on their smart card)")
        }
        do {
            let key = try P256.Signing.PrivateKey(rawRepresentation: raw)
            userKeys[user] = key
            return key
        } catch {
            throw TokenError(.store, "user '\(user)''s key in the sealed store is malformed")
        }
    }

    public func random(count: Int) throws(TokenError) -> [UInt8] {
        guard (1...1024).contains(count) else {
            throw TokenError(.invalidArgument, "random bytes: ask for 1-1024, not \(count)")
        }
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Issues a new identity certificate for an existing user's key (soft) or for a CSR's key
    /// (a user whose key lives on a smart card), replacing the stored one.
    public func issueCertificate(user: String, csrPEM: String?) throws(TokenError) -> Certificate {
        try requireUnlocked()
        guard var record = try userRecord(user) else { throw TokenError(.unknownUser, "no user '\(user)'") }
        let subjectKey: Certificate.PublicKey
        if let csrPEM {
            subjectKey = try IdentityCA.publicKey(fromCSR: csrPEM)
            record.key = nil
        } else if let raw = record.key, let key = try? P256.Signing.PrivateKey(rawRepresentation: raw) {
            subjectKey = Certificate.PublicKey(key.publicKey)
        } else {
            throw TokenError(.invalidArgument, "user '\(user)' has no key in this token; give a CSR")
        }
        let certificate = try issueIdentity(user, subjectKey: subjectKey)
        record.certificate = try IdentityCA.der(certificate)
        try commit([SoftRecordName.user(user): try RecordCoding.encode(record)])
        return certificate
    }

    /// A certificate kept for a hardware key (see below), if one was issued.
    public func storedCertificate(named name: String) -> Certificate? {
        store[SoftRecordName.certificate(name)].flatMap { try? IdentityCA.certificate(der: $0) }
    }

    /// The root CA's certificate for a token key that lives outside the store (a TPM's attestation
    /// or audit key), kept in the store as `name`: issued on first use, and again only if the
    /// hardware's key changes (another TPM, a cleared one).
    public func certificate(forHardwareKey name: String, purpose: KeyPurpose, publicKey: P256.Signing.PublicKey) throws(TokenError) -> Certificate {
        let record = SoftRecordName.certificate(name)
        if let der = store[record], let stored = try? IdentityCA.certificate(der: der),
            P256.Signing.PublicKey(stored.publicKey)?.rawRepresentation == publicKey.rawRepresentation
        {
            return stored
        }
        let ca = try subordinateCA(.tokenKeys)
        let certificate = try IdentityCA.issue(
            commonName: "ukey \(name) \(token.serial)",
            subjectKey: Certificate.PublicKey(publicKey),
            purpose: purpose,
            caKey: ca.key,
            caCertificate: ca.certificate,
            now: configuration.clock(),
            validity: IdentityCA.defaultRootValidity
        )
        try commit([record: try IdentityCA.der(certificate)])
        return certificate
    }

    func issueIdentity(_ user: String, subjectKey: Certificate.PublicKey) throws(TokenError) -> Certificate {
        let ca = try subordinateCA(.users)
        return try IdentityCA.issue(
            commonName: user,
            subjectKey: subjectKey,
            purpose: .userIdentity,
            caKey: ca.key,
            caCertificate: ca.certificate,
            now: configuration.clock(),
            validity: configuration.userCertificateValidity
        )
    }

    func sign(_ message: [UInt8], with key: P256.Signing.PrivateKey) throws(TokenError) -> [UInt8] {
        do {
            return Array(try key.signature(for: SHA256.hash(data: message)).derRepresentation)
        } catch {
            throw TokenError(.crypto, "signing failed: \(error)")
        }
    }
}

