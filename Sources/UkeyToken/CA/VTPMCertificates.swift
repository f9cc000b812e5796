import Crypto
import CryptoExtras
import Foundation
import SwiftASN1
import UkeyCodec
import X509

/// What swtpm_setup asks a certificate tool for (`create_certs_tool`, swtpm_localca's
/// interface), as `ukey-vtpm-certs` passes it on to ukeyd: which certificate, for which VM's
/// vTPM, for which endorsement key, and what the TPM says it is.
public struct VTPMCertificateRequest: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// The EK certificate (TCG EK Credential Profile), written to NV index 0x01c00002.
        case endorsement = "ek"
        /// The platform certificate: the platform (a ukey VM) that holds that EK.
        case platform
    }

    public var kind: Kind
    /// The policy entity of the VM whose vTPM this is: the certificate names it.
    public var vm: String
    public var endorsementKey: VTPMEndorsementKey
    /// swtpm's `--tpm-manufacturer`, `--tpm-model`, `--tpm-version` (e.g. "id:00001014", "swtpm",
    /// "id:20191023"): written into the EK certificate's subjectAltName as TCG's attributes.
    public var tpmManufacturer: String
    public var tpmModel: String
    public var tpmVersion: String

    public init(
        kind: Kind,
        vm: String,
        endorsementKey: VTPMEndorsementKey,
        tpmManufacturer: String,
        tpmModel: String,
        tpmVersion: String
    ) {
        self.kind = kind
        self.vm = vm
        self.endorsementKey = endorsementKey
        self.tpmManufacturer = tpmManufacturer
        self.tpmModel = tpmModel
        self.tpmVersion = tpmVersion
    }

    /// The longest attribute a TPM description may have (TCG's are short strings).
    public static let maxAttributeLength = 64

    /// Why the request cannot be certified, or nil: every string bounded and printable.
    public var problem: String? {
        for (name, value) in [
            ("tpm-manufacturer", tpmManufacturer), ("tpm-model", tpmModel), ("tpm-version", tpmVersion),
        ]
        where value.isEmpty || value.utf8.count > Self.maxAttributeLength
            || !value.unicodeScalars.allSatisfy({ (0x21...0x7e).contains($0.value) })
        {
            return "\(name) must be 1-\(Self.maxAttributeLength) printable ASCII characters without spaces"
        }
        return nil
    }
}

/// A vTPM's endorsement public key as swtpm_setup hands it to its certificate tool: an RSA
/// modulus in hex (exponent 65537, as TCG's EK templates have), or `x=HEX,y=HEX[,id=CURVE]`
/// for an ECC EK (P-256 or P-384). Untrusted text: bounded and checked.
public enum VTPMEndorsementKey: Sendable, Equatable {
    case rsa(modulus: [UInt8])
    case ecc(curve: Curve, x: [UInt8], y: [UInt8])

    public enum Curve: String, Sendable {
        case p256 = "secp256r1"
        case p384 = "secp384r1"

        var coordinateSize: Int { self == .p256 ? 32 : 48 }
    }

    /// The longest parameter taken: an RSA-4096 modulus in hex is 1024 characters.
    public static let maxTextLength = 1100

    public init(parsing text: String) throws(TokenError) {
        guard text.utf8.count <= Self.maxTextLength else {
            throw TokenError(.invalidArgument, "the EK parameter is longer than \(Self.maxTextLength) characters")
        }
        if !text.contains("=") {
            guard let modulus = Hex.decode(text), [256, 384, 512].contains(modulus.count),
                modulus.first.map({ $0 & 0x80 != 0 }) == true
            else {
                throw TokenError(
                    .invalidArgument,
                    "the EK parameter is neither an RSA-2048/3072/4096 modulus in hex nor x=...,y=... of an EC point"
                )
            }
            self = .rsa(modulus: modulus)
            return
        }
        var fields: [String: String] = [:]
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, ["x", "y", "id"].contains(pair[0]), fields[pair[0]] == nil else {
                throw TokenError(
                    .invalidArgument,
                    "the EK parameter's field '\(part)' is not x=, y= or id= (once each)"
                )
            }
            fields[pair[0]] = pair[1]
        }
        let curveName = fields["id"] ?? Curve.p256.rawValue
        guard let curve = Curve(rawValue: curveName) else {
            throw TokenError(.invalidArgument, "the EK's curve '\(curveName)' is not secp256r1 or secp384r1")
        }
        guard let x = fields["x"].flatMap(Hex.decode), let y = fields["y"].flatMap(Hex.decode),
            x.count <= curve.coordinateSize, y.count <= curve.coordinateSize
        else {
            throw TokenError(
                .invalidArgument,
                "the EK's x= and y= must be hex coordinates of a \(curve.rawValue) point"
            )
        }
        // swtpm writes the coordinates without leading zero bytes.
        let pad = { (c: [UInt8]) in [UInt8](repeating: 0, count: curve.coordinateSize - c.count) + c }
        self = .ecc(curve: curve, x: pad(x), y: pad(y))
    }

    /// The key as a certificate's subject key; a point off the curve or a weak modulus is refused.
    public func publicKey() throws(TokenError) -> Certificate.PublicKey {
        do {
            switch self {
            case .rsa(let modulus):
                return Certificate.PublicKey(try _RSA.Signing.PublicKey(n: modulus, e: [0x01, 0x00, 0x01]))
            case .ecc(.p256, let x, let y):
                return Certificate.PublicKey(try P256.Signing.PublicKey(x963Representation: [0x04] + x + y))
            case .ecc(.p384, let x, let y):
                return Certificate.PublicKey(try P384.Signing.PublicKey(x963Representation: [0x04] + x + y))
            }
        } catch {
            throw TokenError(.invalidArgument, "the EK parameter is not a usable public key: \(error)")
        }
    }
}

/// The certificates of ukey's vTPM sub-CA (`CertificatePolicy.vtpm`): an EK certificate in the
/// shape of TCG's EK Credential Profile (key usage keyEncipherment, extended key usage
/// tcg-kp-EKCertificate, the TPM's manufacturer, model and version as a directoryName in its
/// subjectAltName), plus ukey's own: the certificate policy of the vTPM sub-CA, whose user
/// notice names the VM ("ukey vm NAME"), so a verifier learns from one certificate which VM of
/// which ukey host the TPM belongs to. The platform certificate carries the same key and names.
///
/// The VM is named in the policy's qualifier, not in an extension of its own under ukey's arc:
/// an extension's OID is one SwiftASN1 must hold, and ukey's arc (a UUID) is wider than it takes.
public enum VTPMCertificates {
    /// What the vTPM policy's user notice says before the VM's name.
    public static let vmNoticePrefix = "ukey vm "
    /// id-qt-unotice (RFC 5280 4.2.1.4).
    static let userNoticeQualifier: [UInt8] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x02, 0x02]
    /// tcg-kp-EKCertificate and tcg-kp-PlatformCertificate.
    public static let endorsementUsageOID = "2.23.133.8.1"
    public static let platformUsageOID = "2.23.133.8.2"
    static let endorsementUsage: [UInt8] = [0x06, 0x05, 0x67, 0x81, 0x05, 0x08, 0x01]
    static let platformUsage: [UInt8] = [0x06, 0x05, 0x67, 0x81, 0x05, 0x08, 0x02]
    /// tcg-at-tpmManufacturer/Model/Version, tcg-at-platformManufacturer/Model/Version.
    static let tpmManufacturer: ASN1ObjectIdentifier = [2, 23, 133, 2, 1]
    static let tpmModel: ASN1ObjectIdentifier = [2, 23, 133, 2, 2]
    static let tpmVersion: ASN1ObjectIdentifier = [2, 23, 133, 2, 3]
    static let platformManufacturer: ASN1ObjectIdentifier = [2, 23, 133, 2, 4]
    static let platformModel: ASN1ObjectIdentifier = [2, 23, 133, 2, 5]
    static let platformVersion: ASN1ObjectIdentifier = [2, 23, 133, 2, 6]

    /// How long a vTPM's certificate is valid: as long as its VM may live, so the CA's own term.
    public static let validity: TimeInterval = IdentityCA.defaultRootValidity

    /// The longest VM name a certificate takes (a policy entity's longest).
    public static let maxVMNameLength = 64

    /// Issues `request`'s certificate with the vTPM sub-CA `caKey`/`caCertificate`.
    public static func issue(
        _ request: VTPMCertificateRequest,
        caKey: Certificate.PrivateKey,
        caCertificate: Certificate,
        now: Date
    ) async throws(TokenError) -> Certificate {
        guard CertificatePoliciesExtension.certificate(caCertificate, states: .vtpm) else {
            throw TokenError(.crypto, "the CA '\(caCertificate.subject)' is not the token's vTPM CA")
        }
        guard !request.vm.isEmpty, request.vm.utf8.count <= maxVMNameLength else {
            throw TokenError(.invalidArgument, "a vTPM's VM name must be 1-\(maxVMNameLength) bytes")
        }
        if let problem = request.problem { throw TokenError(.invalidArgument, problem) }
        let subjectKey = try request.endorsementKey.publicKey()
        let alternativeName: DistinguishedName
        let attributes: [(ASN1ObjectIdentifier, String)] =
            request.kind == .endorsement
            ? [
                (tpmManufacturer, request.tpmManufacturer), (tpmModel, request.tpmModel),
                (tpmVersion, request.tpmVersion),
            ]
            : [(platformManufacturer, "ukey"), (platformModel, "ukey vm \(request.vm)"), (platformVersion, "1")]
        alternativeName = DistinguishedName(
            attributes.map {
                RelativeDistinguishedName(RelativeDistinguishedName.Attribute(type: $0.0, utf8String: $0.1))
            }
        )
        let usage = request.kind == .endorsement ? endorsementUsage : platformUsage
        let what = request.kind == .endorsement ? "EK" : "platform"
        return try await IdentityCA.certify(
            commonName: "vTPM \(what) of \(request.vm)",
            subjectKey: subjectKey,
            issuerKey: caKey,
            issuer: caCertificate,
            now: now,
            validity: validity
        ) {
            Critical(BasicConstraints.notCertificateAuthority)
            if case .rsa = request.endorsementKey {
                Critical(KeyUsage(keyEncipherment: true))
            } else {
                Critical(KeyUsage(keyAgreement: true))
            }
            Certificate.Extension(
                oid: OIDList.extendedKeyUsage,
                critical: false,
                value: ArraySlice(OIDList.sequence(of: [usage]))
            )
            policy(naming: request.vm)
            SubjectAlternativeNames([.directoryName(alternativeName)])
        }
    }

    /// certificatePolicies { vtpm policy, qualifiers { userNotice { explicitText "ukey vm NAME" } } }
    /// (every length under 128 bytes: the name is at most 64).
    static func policy(naming vm: String) -> Certificate.Extension {
        let text = Array((vmNoticePrefix + vm).utf8)
        let notice = OIDList.sequence(of: [[0x0c, UInt8(text.count)] + text])
        let qualifier = OIDList.sequence(of: [userNoticeQualifier, notice])
        let information = OIDList.sequence(of: [CertificatePolicy.vtpm.identifier, OIDList.sequence(of: [qualifier])])
        return Certificate.Extension(
            oid: OIDList.certificatePolicies,
            critical: false,
            value: ArraySlice(OIDList.sequence(of: [information]))
        )
    }

    /// The VM a vTPM certificate names in its vTPM policy's user notice, or nil when it names none
    /// (or not as ukey writes it).
    public static func vm(namedBy certificate: Certificate) -> String? {
        guard let ext = certificate.extensions[oid: OIDList.certificatePolicies],
            let root = try? DER.parse(ext.value), case .constructed(let policies) = root.content
        else { return nil }
        for information in policies {
            guard case .constructed(let parts) = information.content else { continue }
            let items = Array(parts)
            guard items.count == 2, Array(items[0].encodedBytes) == CertificatePolicy.vtpm.identifier,
                case .constructed(let qualifiers) = items[1].content
            else { continue }
            for qualifier in qualifiers {
                guard case .constructed(let pair) = qualifier.content else { continue }
                let fields = Array(pair)
                guard fields.count == 2, Array(fields[0].encodedBytes) == userNoticeQualifier,
                    case .constructed(let notice) = fields[1].content,
                    let text = notice.first(where: { _ in true }),
                    let string = try? ASN1UTF8String(derEncoded: text.encodedBytes)
                else { continue }
                let value = String(string)
                if value.hasPrefix(vmNoticePrefix) { return String(value.dropFirst(vmNoticePrefix.count)) }
            }
        }
        return nil
    }

    /// Why `certificate` is not the EK certificate of `vm`'s vTPM under `root`, or nil when it is:
    /// it says it is an EK certificate, states the vTPM policy, names `vm`, and was issued by the
    /// root's vTPM sub-CA in `intermediates`. The checks `openssl verify -policy` makes, plus ukey's.
    public static func problem(
        with certificate: Certificate,
        vm: String,
        intermediates: [Certificate],
        root: Certificate,
        at now: Date
    ) -> String? {
        guard let ext = certificate.extensions[oid: OIDList.extendedKeyUsage],
            OIDList.identifiers(in: ext.value, nested: false)?.contains(endorsementUsage) == true
        else { return "certificate '\(certificate.subject)' is not an EK certificate (no tcg-kp-EKCertificate)" }
        guard CertificatePoliciesExtension.certificate(certificate, states: .vtpm) else {
            return "certificate '\(certificate.subject)' is not under ukey's vTPM policy \(CertificatePolicy.vtpm.oid)"
        }
        guard let named = self.vm(namedBy: certificate), named == vm else {
            return "certificate '\(certificate.subject)' is not for VM \(vm)'s vTPM"
        }
        guard let ca = intermediates.first(where: { $0.subject == certificate.issuer }),
            CertificatePoliciesExtension.certificate(ca, states: .vtpm)
        else { return "certificate '\(certificate.subject)' was not issued by the token's vTPM CA" }
        if let problem = IdentityCA.verify(certificate, issuedBy: ca, at: now) { return problem }
        if let problem = IdentityCA.verify(ca, issuedBy: root, at: now) { return "vTPM CA \(problem)" }
        return nil
    }
}
