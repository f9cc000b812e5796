import Crypto
import X509

/// The records of users whose PIN and identity key are on their own card (users = "pcsc"): the
/// store keeps the name, the roles, the card's serial and the user CA's certificate of the card's
/// 9a key; the card keeps the PIN, its counter and the key.
extension SoftToken {
    /// Adds a user whose card (`serial`) holds `publicKey` in 9a; the user CA certifies that key.
    public nonisolated func addCardUser(
        _ name: String,
        roles: [String],
        card serial: UInt32,
        publicKey: P256.Signing.PublicKey
    ) async throws(TokenError) -> TokenCertificate {
        let (record, issuer) = try await prepareCardUser(name, roles: roles, card: serial)
        let certificate = try await issuer.issueIdentity(name, subjectKey: .x509(Certificate.PublicKey(publicKey)))
        var complete = record
        complete.certificate = try certificate.derRepresentation
        try await commitNewUser(complete)
        return certificate
    }

    private func prepareCardUser(
        _ name: String,
        roles: [String],
        card serial: UInt32
    ) throws(TokenError) -> (UserRecord, IdentityIssuer) {
        try checkNewUser(name)
        let record = UserRecord(
            name: name,
            roles: roles,
            pin: .heldByCard(kdf: token.kdf),
            key: nil,
            certificate: [],
            card: serial
        )
        return (record, try identityIssuer())
    }

    /// The card a user logs in with, and the key its 9a slot must prove: nil for a user without one.
    public func userCard(_ name: String) throws(TokenError) -> (serial: UInt32, publicKey: P256.Signing.PublicKey)? {
        guard let record = try userRecord(name) else { throw TokenError(.unknownUser, "no user '\(name)'") }
        guard let serial = record.card else { return nil }
        guard let certificate = try? Certificate(derEncoded: record.certificate),
            let key = P256.Signing.PublicKey(certificate.publicKey)
        else {
            throw TokenError(.crypto, "user '\(name)''s certificate in the store does not parse")
        }
        return (serial, key)
    }
}
