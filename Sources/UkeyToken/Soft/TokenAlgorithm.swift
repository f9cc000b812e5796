import UkeySM

/// The algorithm of a token's own keys (its CAs, attestation and audit keys), chosen at
/// initialisation and kept in the token's record: P-256 (ECDSA with SHA-256), or SM2 (SM2 with
/// SM3) with the distinguishing ID its signatures carry.
public enum TokenAlgorithm: Sendable, Hashable {
    case p256
    case sm2(id: [UInt8])

    /// SM2 with the GM/T 0009 default ID.
    public static let sm2Default = TokenAlgorithm.sm2(id: SM2.defaultID)

    /// The name of the signatures its keys make, as replies and `VerificationKey` give it.
    public var signatureAlgorithm: String {
        switch self {
        case .p256: "ecdsa-p256-sha256"
        case .sm2: "sm2-sm3"
        }
    }

    /// The SM2 distinguishing ID, for an SM2 token.
    public var sm2ID: [UInt8]? {
        if case .sm2(let id) = self { return id }
        return nil
    }

    /// As the token's record keeps it (nil for P-256, so records written before SM2 read as P-256).
    var recordValue: (name: String?, id: String?) {
        switch self {
        case .p256: (nil, nil)
        case .sm2(let id): ("sm2", String(decoding: id, as: UTF8.self))
        }
    }

    init(recordName: String?, id: String?) throws(TokenError) {
        switch recordName {
        case nil, "p256": self = .p256
        case "sm2": self = .sm2(id: try SM2Identifier.bytes(id ?? SM2Identifier.defaultText))
        case let other?:
            throw TokenError(.store, "the token's record names the algorithm '\(other)', which this ukey does not know")
        }
    }
}
