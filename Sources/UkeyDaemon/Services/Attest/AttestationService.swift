import UkeyAPI
import UkeyToken

/// The attestation key a remote verifier knows this host by: made under the TPM's EK on first
/// use and kept, wrapped by the TPM, with the token's sealed records, so a restarted ukeyd (or
/// agent) presents the same key. One at a time: two first calls must not make two keys.
actor AttestationService {
    static let record = "attest-ak"
    /// The EK, read once: it is the TPM's own and does not change while ukeyd holds the TPM, and
    /// reading it makes an RSA primary, the costliest command a quote would otherwise pay for.
    private var endorsement: Endorsement?

    private func endorsement(_ role: any RemoteAttestationRole) async throws(TokenError) -> Endorsement {
        if let endorsement { return endorsement }
        let read = try await role.endorsement()
        endorsement = read
        return read
    }

    /// The remote-attestation role, or the reason there is none.
    static func role(_ token: any TrustedRoot) throws(APIError) -> any RemoteAttestationRole {
        guard let role = token.remoteAttestation else {
            throw .tokenUnavailable(
                reason:
                    "the registers are on the \(token.roleBackends["registers"] ?? "soft") backend; a remote verifier needs them on a TPM ([token] registers = \"tpm\")"
            )
        }
        return role
    }

    /// The EK and the attestation key (made now if there is none, or if `renew`).
    func identity(
        _ token: any TrustedRoot,
        renew: Bool
    ) async throws(TokenError) -> (Endorsement, WrappedAttestationKey) {
        guard let role = token.remoteAttestation else { throw TokenError(.unavailable, "no TPM") }
        let endorsement = try await endorsement(role)
        if !renew, let raw = await token.daemonRecord(Self.record), let key = WrappedAttestationKey(record: raw) {
            return (endorsement, key)
        }
        let key = try await role.createAttestationKey(under: endorsement.algorithm)
        try await token.setDaemonRecords([Self.record: key.record])
        return (endorsement, key)
    }

    /// The kept key, for activation and quotes: one must exist (Identity makes it).
    func key(_ token: any TrustedRoot) async throws(APIError) -> (algorithm: String, key: WrappedAttestationKey) {
        guard let raw = await token.daemonRecord(Self.record), let key = WrappedAttestationKey(record: raw) else {
            throw .invalidArgument(reason: "there is no attestation key yet: call io.ukey.Attest.Identity first")
        }
        // The algorithm of the EK it was made under: the one Identity reports.
        let role = try Self.role(token)
        do {
            return (try await endorsement(role).algorithm, key)
        } catch {
            throw APIError(error)
        }
    }
}
