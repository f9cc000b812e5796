import SwiftASN1
import X509

/// What a key certified by a ukey token may be taken for, and the object identifiers that say so.
///
/// A verifier must never take a user's certificate for the token's attestation or audit key: both
/// chain to the same root CA, and a user's key signs what its owner asks (`io.ukey.Token.Sign`).
/// So every certificate states its purpose twice over, and a verifier checks both:
/// - its issuer: the root CA certifies two sub-CAs, one for the token's own keys and one for
///   users, and each issues only its own kind;
/// - its contents: a certificate policy (the sub-CA's and its leaves', which `openssl verify
///   -policy OID -explicit_policy` checks along the path) and, on the leaves, an extended key
///   usage naming the one job of the key.
///
/// The OIDs sit under a UUID arc (ITU-T X.667, `2.25.<uuid as an integer>`), which needs no
/// registration and cannot collide with anyone's: 07d17de8-9cb3-4582-91ce-41140698b3ff.
public enum KeyPurpose: String, Sendable, CaseIterable {
    /// Signs quotes of the registers (ukey-v1, or TPM2_Quote by the TPM's key).
    case attestation
    /// Signs audit-log checkpoints.
    case audit
    /// A person's identity (TLS client authentication, `io.ukey.Token.Sign`).
    case userIdentity = "user"

    /// `2.25.10392339744558737358530141729444115455`: ukey's arc.
    public static let arc = "2.25.10392339744558737358530141729444115455"

    /// The extended key usage a leaf carries for this purpose.
    public var extendedKeyUsageOID: String {
        switch self {
        case .attestation: "\(Self.arc).1.1"
        case .audit: "\(Self.arc).1.2"
        case .userIdentity: "1.3.6.1.5.5.7.3.2"  // id-kp-clientAuth
        }
    }

    /// The certificate policy of the sub-CA that issues this purpose and of its leaves.
    public var policy: CertificatePolicy {
        switch self {
        case .attestation, .audit: .tokenKeys
        case .userIdentity: .users
        }
    }

    /// The usage's OID as DER (tag, length, content).
    var identifier: [UInt8] {
        switch self {
        case .attestation: UkeyArc.oid([1, 1])
        case .audit: UkeyArc.oid([1, 2])
        case .userIdentity: [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]  // 1.3.6.1.5.5.7.3.2
        }
    }

    /// The extendedKeyUsage extension (RFC 5280 4.2.1.12) naming this purpose, and `also`.
    func extendedKeyUsageExtension(also: [[UInt8]] = []) -> Certificate.Extension {
        Certificate.Extension(
            oid: OIDList.extendedKeyUsage,
            critical: false,
            value: ArraySlice(OIDList.sequence(of: [identifier] + also))
        )
    }

    /// `arc.1.3`: the attestation key is a TPM's and vouches only for TPM2 quotes (a TPMS_ATTEST
    /// the TPM built, starting with TPM_GENERATED_VALUE). A restricted TPM key can also sign a
    /// digest of other bytes (TPM2_Hash gives the ticket): without this, its certificate would
    /// vouch for a "ukey-v1" quote made of such bytes too. Verifiers take a TPM2 quote only under
    /// a certificate that states it, and a "ukey-v1" quote never under one that does.
    public static let tpm2QuotesOID = "\(arc).1.3"
    static let tpm2Quotes: [UInt8] = UkeyArc.oid([1, 3])

    /// Whether `certificate`'s extended key usage says it vouches only for TPM2 quotes.
    public static func vouchesOnlyForTPM2Quotes(_ certificate: Certificate) -> Bool {
        guard let ext = certificate.extensions[oid: OIDList.extendedKeyUsage] else { return false }
        return OIDList.identifiers(in: ext.value, nested: false)?.contains(tpm2Quotes) == true
    }

    /// Whether `certificate`'s extended key usage names this purpose. A certificate without the
    /// extension, or with a malformed one, does not.
    public func isStated(by certificate: Certificate) -> Bool {
        guard let ext = certificate.extensions[oid: OIDList.extendedKeyUsage] else { return false }
        return OIDList.identifiers(in: ext.value, nested: false)?.contains(identifier) == true
    }
}

/// OIDs under ukey's arc. Its second arc is a 128-bit number, more than SwiftASN1 takes (one
/// machine word per arc), so ukey writes and compares these OIDs as DER bytes: 0x69 is 2.25
/// (40 * 2 + 25), then the UUID's integer in base 128, then the arcs below it (each < 128).
/// The tests check, with openssl, that these bytes print as the dotted strings.
enum UkeyArc {
    static let content: [UInt8] = [
        0x69, 0x8f, 0xd1, 0xbe, 0xfa, 0x93, 0xcb, 0x9a, 0x96, 0x85, 0x91, 0xe7, 0x90, 0xa2, 0xc0, 0xb4, 0xe2, 0xe7,
        0x7f,
    ]

    /// The DER of the OID `arc.below...`.
    static func oid(_ below: [UInt8]) -> [UInt8] {
        precondition(below.allSatisfy { $0 < 0x80 })
        let body = content + below
        return [0x06, UInt8(body.count)] + body
    }
}

/// The two extensions that are lists of OIDs, read and written as DER bytes (see `UkeyArc`).
enum OIDList {
    static let extendedKeyUsage: ASN1ObjectIdentifier = [2, 5, 29, 37]
    static let certificatePolicies: ASN1ObjectIdentifier = [2, 5, 29, 32]

    /// SEQUENCE { items } (every length here is under 128 bytes).
    static func sequence(of items: [[UInt8]]) -> [UInt8] {
        let body = items.flatMap { $0 }
        precondition(body.count < 0x80)
        return [0x30, UInt8(body.count)] + body
    }

    /// The OIDs (as DER) of a SEQUENCE OF OID (`nested` false: extendedKeyUsage) or of a
    /// SEQUENCE OF SEQUENCE { OID, ... } (`nested` true: certificatePolicies); nil if malformed.
    static func identifiers(in value: ArraySlice<UInt8>, nested: Bool) -> [[UInt8]]? {
        guard let root = try? DER.parse(value), root.identifier == .sequence,
            case .constructed(let items) = root.content
        else { return nil }
        var found: [[UInt8]] = []
        for item in items {
            var node = item
            if nested {
                guard item.identifier == .sequence, case .constructed(let inner) = item.content,
                    let first = inner.first(where: { _ in true })
                else { return nil }
                node = first
            }
            guard node.identifier == .objectIdentifier, case .primitive = node.content else { return nil }
            found.append(Array(node.encodedBytes))
        }
        return found
    }
}

/// The certificate policies of a ukey token's hierarchy, one per sub-CA.
public enum CertificatePolicy: String, Sendable, CaseIterable {
    /// The token's own keys (attestation, audit) and the sub-CA that certifies them.
    case tokenKeys = "token-keys"
    /// Users' identity keys and the sub-CA that certifies them.
    case users
    /// The endorsement keys of the vTPMs ukeyd runs for its VMs, and the sub-CA that certifies
    /// them (`VTPMCertificates`): a guest's verifier that checks this policy knows the TPM it
    /// talks to is one ukeyd started for a trusted chain.
    case vtpm

    /// The policy's OID, dotted (as `openssl verify -policy` takes it).
    public var oid: String {
        switch self {
        case .tokenKeys: "\(KeyPurpose.arc).2.1"
        case .users: "\(KeyPurpose.arc).2.2"
        case .vtpm: "\(KeyPurpose.arc).2.3"
        }
    }

    /// The policy's OID as DER.
    var identifier: [UInt8] {
        switch self {
        case .tokenKeys: UkeyArc.oid([2, 1])
        case .users: UkeyArc.oid([2, 2])
        case .vtpm: UkeyArc.oid([2, 3])
        }
    }

    /// The name of the sub-CA's certificate (`io.ukey.Token.Certificate`, `ukeyctl cert`).
    public var caName: String {
        caKey.rawValue
    }

    /// The sub-CA's key.
    public var caKey: TokenKey {
        switch self {
        case .tokenKeys: .tokenKeysCA
        case .users: .userCA
        case .vtpm: .vtpmCA
        }
    }
}

/// The certificatePolicies extension (RFC 5280 4.2.1.4) with policy identifiers only, no
/// qualifiers: what ukey writes and all it needs to read.
public enum CertificatePoliciesExtension {
    public static func extensionValue(_ policies: [CertificatePolicy]) -> Certificate.Extension {
        let value = OIDList.sequence(of: policies.map { OIDList.sequence(of: [$0.identifier]) })
        return Certificate.Extension(oid: OIDList.certificatePolicies, critical: false, value: ArraySlice(value))
    }

    /// Whether `certificate` states `policy`. A certificate without the extension, or with a
    /// malformed one, does not: a verifier then refuses it.
    public static func certificate(_ certificate: Certificate, states policy: CertificatePolicy) -> Bool {
        guard let ext = certificate.extensions[oid: OIDList.certificatePolicies] else { return false }
        return OIDList.identifiers(in: ext.value, nested: true)?.contains(policy.identifier) == true
    }
}
