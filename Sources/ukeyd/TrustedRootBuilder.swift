import Foundation
import UkeyCore
import UkeyPCSC
import UkeyStore
import UkeyTPM
import UkeyToken
import X509

/// The one place that turns a `TokenComposition` into concrete roles. Each role's backend is an
/// exhaustive switch here: a new backend adds a case to the enum and one line per role it can
/// serve, and nothing else in the daemon changes.
struct TrustedRootBuilder: TrustedRootProvider {
    let composition: TokenComposition
    let stateDirectory: String
    /// The TPM's TCTI, for roles the TPM serves.
    let tcti: String
    /// The card reader (a substring of its name) and the file with the card's PIN, for roles a
    /// card serves.
    let pcscReader: String?
    let pcscPINFile: String
    /// The soft registers' banks.
    var banks: Set<HashAlgorithm> = [.sha256]
    /// The PCRs a policy may use on the TPM (`[tpm] registers`); nil: all it can extend.
    var tpmRegisters: Set<Int>? = nil
    /// The key algorithm the settings name (used at Initialize; an opened token must match it),
    /// nil when they name none.
    var algorithm: TokenAlgorithm? = nil

    func isInitialized() -> Bool {
        SoftToken.isInitialized(stateDirectory: stateDirectory)
    }

    func initialize(
        soPIN: String,
        policySigner: PolicySigner,
        bootID: String
    ) async throws(TokenError) -> any TrustedRoot {
        let peers = try connect(newToken: true)
        if let tpm = peers.tpm {
            // The counter is this token's: one an earlier token left on the TPM is replaced.
            do {
                _ = try await tpm.defineCounterForNewToken()
            } catch {
                throw TokenError(.unavailable, "cannot define ukey's counter in the TPM for the new token: \(error)")
            }
        }
        let records = try await SoftToken.initialize(
            try configuration(peers),
            soPIN: soPIN,
            policySigner: policySigner,
            bootID: bootID
        )
        return try compose(records, peers)
    }

    func open(bootID: String) throws(TokenError) -> any TrustedRoot {
        // A file that cannot be a store is named as such, before the TPM or card is asked for
        // what would open it (a missing TPM object secret would otherwise be the reason given).
        if let problem = SealedStore.shapeProblem(in: stateDirectory) { throw TokenError(.store, problem) }
        let peers = try connect()
        let records = try SoftToken.open(try configuration(peers), bootID: bootID)
        // The algorithm is the token's, fixed at Initialize: a setting that names another is a
        // mistake to report, not a change to make quietly.
        if let algorithm, algorithm != records.keyAlgorithm {
            throw TokenError(
                .invalidArgument,
                "the token in \(stateDirectory) was initialised with \(Self.describe(records.keyAlgorithm)) keys, but the settings name \(Self.describe(algorithm)): the algorithm is chosen at Initialize; fix token.algorithm / token.sm2-id, or initialise a new token"
            )
        }
        return try compose(records, peers)
    }

    private static func describe(_ algorithm: TokenAlgorithm) -> String {
        switch algorithm {
        case .p256: "P-256"
        case .sm2(let id): "SM2 (ID \(String(decoding: id, as: UTF8.self)))"
        }
    }

    /// The hardware the composition needs, connected once and shared by every role it serves.
    private struct Peers {
        var tpm: TPM?
        var card: CardBinding?

        func requireTPM() throws(TokenError) -> TPM {
            guard let tpm else { throw TokenError(.unavailable, "the composition needs a TPM and none was connected") }
            return tpm
        }

        func requireCard() throws(TokenError) -> CardBinding {
            guard let card else { throw TokenError(.unavailable, "the composition needs a card and none was opened") }
            return card
        }
    }

    /// `newToken`: Initialize, which makes the token's TPM object secret (a stale one from an
    /// attempt that did not finish is replaced); otherwise the token's own is read.
    private func connect(newToken: Bool = false) throws(TokenError) -> Peers {
        if let refusal = composition.refusal { throw TokenError(.invalidArgument, refusal) }
        var peers = Peers()
        if composition.usesTPM {
            let secret: TPMObjectSecret
            do {
                if newToken {
                    unlink("\(stateDirectory)/\(TPMObjectSecret.fileName)")
                    secret = try TPMObjectSecret.create(stateDirectory: stateDirectory)
                } else {
                    secret = try TPMObjectSecret.load(stateDirectory: stateDirectory)
                }
            } catch {
                throw TokenError(.unavailable, "the token's TPM objects: \(error)")
            }
            do {
                peers.tpm = try TPM(tcti: tcti, secret: secret)
            } catch {
                throw TokenError(.unavailable, "cannot reach the TPM at \(tcti): \(error)")
            }
        }
        if composition.usesCard {
            do {
                peers.card = try CardBinding(reader: pcscReader, pin: try CardPINFile.read(pcscPINFile))
            } catch {
                let roles = composition.roleNames.filter { $0.value == "pcsc" }.keys.sorted().joined(separator: ", ")
                throw TokenError(
                    error.code,
                    "the token's \(roles) are on a card, and it cannot be used: \(error.reason)\(composition.store == .pcsc ? "; the sealed store opens only with that card" : "")"
                )
            }
        }
        return peers
    }

    /// The sealed store's protector and where the CA keys live.
    private func configuration(_ peers: Peers) throws(TokenError) -> SoftToken.Configuration {
        var configuration = SoftToken.Configuration(stateDirectory: stateDirectory)
        configuration.banks = banks
        configuration.algorithm = algorithm ?? .p256
        configuration.hardwareBinding = peers.card?.identity
        switch composition.store {
        case .deviceKey: break
        case .tpm: configuration.protector = TPMStoreKeyProtector(tpm: try peers.requireTPM())
        case .pcsc: configuration.protector = CardStoreKeyProtector(binding: try peers.requireCard())
        }
        switch composition.keys {
        case .soft: break
        case .tpm:
            configuration.certificateAuthorityKeys = try TPMKeys.certificateAuthorityKeys(on: try peers.requireTPM())
        case .pcsc: break  // the CA keys stay in the store, which the card unwraps
        }
        return configuration
    }

    private func compose(_ records: SoftToken, _ peers: Peers) throws(TokenError) -> ComposedTrustedRoot {
        // Users' own cards, shared by the users role (login) and the keys role (a user's signature).
        let userCards = UserCards()
        let registers: any RegistersRole =
            switch composition.registers {
            // Soft registers quote with the keys role's attestation key: the card's when it has them.
            case .soft:
                composition.keys == .pcsc
                    ? CardSignedRegisters(records: records, binding: try peers.requireCard()) : records
            case .tpm:
                TPMRegisters(
                    records: records,
                    tpm: try peers.requireTPM(),
                    banks: try TPMRegisters.banks(of: try peers.requireTPM()),
                    usable: tpmRegisters
                )
            }
        let keys: any KeysRole =
            switch composition.keys {
            case .soft: records
            case .tpm: TPMKeys(records: records, tpm: try peers.requireTPM())
            case .pcsc: CardKeys(records: records, binding: try peers.requireCard(), userCards: userCards)
            }
        let users: any UsersRole =
            switch composition.users {
            case .soft: records
            case .pcsc: CardUsers(records: records, binding: try peers.requireCard(), cards: userCards)
            }
        let ownHardwareKeys = peers.card.map { card in card.publicKeys.values.map { Certificate.PublicKey($0) } } ?? []
        return ComposedTrustedRoot(
            composition: composition,
            records: records,
            registers: registers,
            keys: keys,
            users: users,
            remoteAttestation: composition.registers == .tpm ? TPMRemoteAttestation(tpm: try peers.requireTPM()) : nil,
            ownHardwareKeys: ownHardwareKeys
        )
    }
}
