import Crypto
import Synchronization
import UkeyPIV
import UkeyToken
import X509

/// Users' own cards (users = "pcsc"): a user's card is known by its serial, in whichever reader
/// it is put; the reader it was last seen in is tried first. One `SmartCard` per reader, kept.
public final class UserCards: Sendable {
    private let clients = Mutex<[String: PIVClient]>([:])
    private let lastSeen = Mutex<[UInt32: String]>([:])

    public init() {}

    func client(reader: String) -> PIVClient {
        clients.withLock { known in
            if let client = known[reader] { return client }
            let client = PIVClient(card: SmartCard(reader: reader))
            known[reader] = client
            return client
        }
    }

    /// Readers to try for `serial`: where it was last seen, then the others.
    func readers(for serial: UInt32) throws(CardError) -> [String] {
        let all = try SmartCard.readerNames()
        let last = lastSeen.withLock { $0[serial] }
        return (last.map { [$0] } ?? []) + all.filter { $0 != last }
    }

    func saw(_ serial: UInt32, in reader: String) {
        lastSeen.withLock { $0[serial] = reader }
    }

    /// Runs `body` on the card with `serial`: `body` returns nil when the reader it was given
    /// holds another card, and the next reader is tried. A reader without a card is skipped.
    func onCard<T: Sendable>(
        serial: UInt32,
        _ body: (PIVClient) async throws(CardError) -> T?
    ) async throws(CardError) -> T {
        var reasons: [String] = []
        for reader in try readers(for: serial) {
            do {
                if let result = try await body(client(reader: reader)) {
                    saw(serial, in: reader)
                    return result
                }
            } catch  where error.kind == .unavailable {
                reasons.append("\(reader): \(error)")
            }
        }
        throw CardError(
            .unavailable,
            "card \(serial) is in no reader\(reasons.isEmpty ? "" : " (\(reasons.joined(separator: "; ")))")"
        )
    }

    /// The card whose 9a certificate names `user` (its common name), as `ukeyctl card enroll
    /// --user` writes it: with its serial and 9a key. Exactly one such card must be present.
    func find(
        user: String
    ) async throws(CardError) -> (serial: UInt32, publicKey: P256.Signing.PublicKey, reader: String) {
        var found: [(serial: UInt32, publicKey: P256.Signing.PublicKey, reader: String)] = []
        for reader in try SmartCard.readerNames() {
            guard let (serial, der) = try? await client(reader: reader).identity(), let serial, let der,
                let certificate = try? Certificate(derEncoded: der),
                let key = P256.Signing.PublicKey(certificate.publicKey),
                certificate.subject.commonName == user
            else { continue }
            found.append((serial, key, reader))
        }
        guard let card = found.first else {
            throw CardError(
                .unavailable,
                "no card in any reader names '\(user)' in its 9a certificate; enrol the user's card first (ukeyctl card enroll --user \(user))"
            )
        }
        guard found.count == 1 else {
            throw CardError(
                .wrongCard,
                "\(found.count) cards name '\(user)' (in \(found.map(\.reader).joined(separator: ", "))); leave only the user's own card in"
            )
        }
        saw(card.serial, in: card.reader)
        return card
    }
}

extension DistinguishedName {
    /// The first common name, as text.
    var commonName: String? {
        for rdn in self {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(describing: attribute.value)
            }
        }
        return nil
    }
}
