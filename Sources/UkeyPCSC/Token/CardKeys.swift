import Crypto
import UkeyCore
import UkeyToken
import X509

/// The keys role on a PIV card: audit checkpoints signed with the card's signature key (9c),
/// random bytes from the card. The CAs and users' keys stay in the sealed store, whose key the
/// card unwraps (`CardStoreKeyProtector`).
public struct CardKeys: KeysRole {
    let records: SoftToken
    let binding: CardBinding

    public init(records: SoftToken, binding: CardBinding) {
        self.records = records
        self.binding = binding
    }

    public func certificate(named name: String) async throws(TokenError) -> Certificate {
        guard name == TokenKey.audit.rawValue else { return try await records.certificate(named: name) }
        return try await binding.certificate("card-audit", slot: .signature, purpose: .audit, records: records)
    }

    public func signAuditCheckpoint(_ checkpoint: [UInt8]) async throws(TokenError) -> [UInt8] {
        try await binding.signWithCard(Array(SHA256.hash(data: AuditCheckpoint.signingDomain + checkpoint)))
    }

    public func sign(asUser user: String, digest: [UInt8]) async throws(TokenError) -> [UInt8] {
        try await records.sign(asUser: user, digest: digest)
    }

    public func random(count: Int) async throws(TokenError) -> [UInt8] {
        guard (1...1024).contains(count) else { throw TokenError(.invalidArgument, "random bytes: ask for 1-1024, not \(count)") }
        do {
            return try await binding.client.random(count: count, managementKey: .tripleDES)
        } catch {
            throw CardBinding.tokenError(error)
        }
    }
}
