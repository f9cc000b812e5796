import Foundation
import SwiftASN1

/// An X.509 v3 certificate with an SM2 key, signed SM2-with-SM3 (OID 1.2.156.10197.1.501, GM/T
/// 0015), written and read here because swift-certificates knows neither. The signature is over
/// the TBSCertificate's DER with the distinguishing ID always given (`SM2.defaultID` unless a
/// caller names another), never OpenSSL's implicit one.
///
/// What OpenSSL 3.0 does with these (tested in `SM2CertificateTests`): `openssl x509 -text` reads
/// them; `openssl verify` does not check an SM2 signature made with a non-empty ID, whatever
/// `-vfyopt distid:` says (it refuses OpenSSL's own certificate made with `-sigopt distid:`
/// too, and accepts only one signed over an empty ID). So a signature is checked here
/// (`isSigned(by:)`), or with `openssl dgst -sm3 -verify KEY -sigopt distid:ID` over the
/// TBSCertificate's bytes.
///
/// The reader is strict: DER only, at most `maxSize` bytes, v3, SM2-with-SM3 in both places, an
/// SM2 key, names as RDN sequences, no critical extension it does not know.
public struct SM2Certificate: Sendable, Equatable {
    public static let signatureAlgorithm: ASN1ObjectIdentifier = [1, 2, 156, 10197, 1, 501]
    static let commonNameOID: ASN1ObjectIdentifier = [2, 5, 4, 3]
    static let basicConstraintsOID: ASN1ObjectIdentifier = [2, 5, 29, 19]
    static let keyUsageOID: ASN1ObjectIdentifier = [2, 5, 29, 15]
    static let basicConstraintsBytes = SM2CertificateExtension.oid(basicConstraintsOID)
    static let keyUsageBytes = SM2CertificateExtension.oid(keyUsageOID)
    public static let maxSize = 16 * 1024

    public let derRepresentation: [UInt8]
    /// The signed part: the TBSCertificate's DER, as it was on the wire.
    public let tbsCertificate: [UInt8]
    public let serialNumber: [UInt8]
    /// The names' DER (for matching an issuer to its certificate) and their common names.
    public let issuerName: [UInt8]
    public let subjectName: [UInt8]
    public let issuerCommonName: String?
    public let subjectCommonName: String?
    public let notBefore: Date
    public let notAfter: Date
    public let publicKey: SM2PublicKey
    public let isCertificateAuthority: Bool
    /// basicConstraints' pathLenConstraint, for a CA that states one.
    public let maxPathLength: Int?
    /// Every extension, in the certificate's order (basicConstraints and keyUsage among them).
    public let extensions: [SM2CertificateExtension]
    /// The DER SM2 signature.
    public let signature: [UInt8]

    // MARK: reading

    public init(derRepresentation der: [UInt8]) throws(SMError) {
        guard der.count <= Self.maxSize else {
            throw SMError(.malformed, "a certificate of \(der.count) bytes is over the \(Self.maxSize)-byte limit")
        }
        do {
            let root = try DER.parse(der)
            guard root.encodedBytes.count == der.count else { throw SMError(.malformed, "bytes after the certificate") }
            var parsed: (tbs: ASN1Node, signature: [UInt8])?
            try DER.sequence(root, identifier: .sequence) { nodes in
                guard let tbs = nodes.next(), let algorithm = nodes.next(), let signature = nodes.next() else {
                    throw SMError(.malformed, "a certificate is TBSCertificate, algorithm, signature")
                }
                try Self.expectSM2WithSM3(algorithm)
                let bits = try ASN1BitString(derEncoded: signature)
                guard bits.paddingBits == 0 else {
                    throw SMError(.malformed, "the signature BIT STRING has padding bits")
                }
                parsed = (tbs, Array(bits.bytes))
            }
            guard let parsed else { throw SMError(.malformed, "empty certificate") }
            derRepresentation = der
            tbsCertificate = Array(parsed.tbs.encodedBytes)
            signature = parsed.signature
            var fields: TBSFields?
            try DER.sequence(parsed.tbs, identifier: .sequence) { nodes in fields = try TBSFields(&nodes) }
            guard let fields else { throw SMError(.malformed, "empty TBSCertificate") }
            serialNumber = fields.serial
            issuerName = fields.issuer
            subjectName = fields.subject
            issuerCommonName = fields.issuerCN
            subjectCommonName = fields.subjectCN
            notBefore = fields.notBefore
            notAfter = fields.notAfter
            publicKey = fields.key
            isCertificateAuthority = fields.isCA
            maxPathLength = fields.maxPathLength
            extensions = fields.extensions
        } catch let error as SMError {
            throw error
        } catch {
            throw SMError(.malformed, "not an SM2 X.509 certificate: \(error)")
        }
    }

    public init(pemRepresentation pem: String) throws(SMError) {
        try self.init(derRepresentation: try SM2.der(fromPEM: pem, label: "CERTIFICATE"))
    }

    public var pemRepresentation: String { SM2.pem(derRepresentation, label: "CERTIFICATE") }

    /// Whether `issuer`'s key signed this certificate, with `id`.
    public func isSigned(by issuer: SM2PublicKey, id: [UInt8] = SM2.defaultID) -> Bool {
        issuer.isValidSignature(signature, for: tbsCertificate, id: id)
    }

    /// The extension with this OID (its DER), if the certificate has it.
    public func extensionValue(oid: [UInt8]) -> SM2CertificateExtension? {
        extensions.first { $0.oid == oid }
    }

    /// Whether `date` is within the validity period.
    public func isValid(at date: Date) -> Bool {
        notBefore <= date && date <= notAfter
    }

    static func expectSM2WithSM3(_ node: ASN1Node) throws {
        try DER.sequence(node, identifier: .sequence) { nodes in
            guard let oid = nodes.next() else { throw SMError(.malformed, "empty AlgorithmIdentifier") }
            guard try ASN1ObjectIdentifier(derEncoded: oid) == signatureAlgorithm else {
                throw SMError(.malformed, "the signature algorithm is not SM2-with-SM3 (1.2.156.10197.1.501)")
            }
            if let parameters = nodes.next() {
                // Absent, as GM/T 0015 and OpenSSL write it; a NULL is tolerated.
                _ = try ASN1Null(derEncoded: parameters)
            }
        }
    }

    /// The fields of a TBSCertificate, in their order.
    struct TBSFields {
        var serial: [UInt8] = []
        var issuer: [UInt8] = [], subject: [UInt8] = []
        var issuerCN: String?, subjectCN: String?
        var notBefore = Date.distantPast, notAfter = Date.distantPast
        var key: SM2PublicKey
        var isCA = false
        var maxPathLength: Int?
        var extensions: [SM2CertificateExtension] = []

        init(_ nodes: inout ASN1NodeCollection.Iterator) throws {
            guard let version = nodes.next(),
                version.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
            else {
                throw SMError(.malformed, "only X.509 v3 certificates are read (no version field)")
            }
            let number = try DER.explicitlyTagged(version, tagNumber: 0, tagClass: .contextSpecific) {
                try Int(derEncoded: $0)
            }
            guard number == 2 else {
                throw SMError(.malformed, "only X.509 v3 certificates are read (version \(number + 1))")
            }
            guard let serialNode = nodes.next(), let algorithm = nodes.next(), let issuerNode = nodes.next(),
                let validity = nodes.next(), let subjectNode = nodes.next(), let spki = nodes.next()
            else { throw SMError(.malformed, "a TBSCertificate is missing fields") }
            let serialBytes = try ArraySlice<UInt8>(derEncoded: serialNode)
            serial = Array(serialBytes)
            try SM2Certificate.expectSM2WithSM3(algorithm)
            issuer = Array(issuerNode.encodedBytes)
            subject = Array(subjectNode.encodedBytes)
            issuerCN = try Self.commonName(issuerNode)
            subjectCN = try Self.commonName(subjectNode)
            (notBefore, notAfter) = try Self.validity(validity)
            key = try SM2PublicKey(derRepresentation: Array(spki.encodedBytes))
            // issuerUniqueID [1] and subjectUniqueID [2] are not written by anyone we read: refused.
            if let extensions = nodes.next() {
                guard extensions.identifier == ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific) else {
                    throw SMError(.malformed, "unexpected field \(extensions.identifier) in the TBSCertificate")
                }
                (isCA, maxPathLength, self.extensions) = try DER.explicitlyTagged(
                    extensions,
                    tagNumber: 3,
                    tagClass: .contextSpecific
                ) { try Self.readExtensions($0) }
            }
            guard nodes.next() == nil else { throw SMError(.malformed, "fields after the extensions") }
        }

        /// The first common name in a Name (UTF8String or PrintableString).
        static func commonName(_ name: ASN1Node) throws -> String? {
            var found: String?
            try DER.sequence(name, identifier: .sequence) { rdns in
                while let rdn = rdns.next() {
                    try DER.set(rdn, identifier: .set) { attributes in
                        while let attribute = attributes.next() {
                            try DER.sequence(attribute, identifier: .sequence) { parts in
                                guard let type = parts.next(), let value = parts.next(), parts.next() == nil else {
                                    throw SMError(.malformed, "a name attribute is a type and a value")
                                }
                                guard try ASN1ObjectIdentifier(derEncoded: type) == SM2Certificate.commonNameOID,
                                    found == nil
                                else { return }
                                switch value.identifier {
                                case .utf8String: found = String(try ASN1UTF8String(derEncoded: value))
                                case .printableString: found = String(try ASN1PrintableString(derEncoded: value))
                                default:
                                    throw SMError(.malformed, "a common name must be a UTF8String or PrintableString")
                                }
                            }
                        }
                    }
                }
            }
            return found
        }

        static func validity(_ node: ASN1Node) throws -> (Date, Date) {
            try DER.sequence(node, identifier: .sequence) { times in
                guard let from = times.next(), let to = times.next(), times.next() == nil else {
                    throw SMError(.malformed, "a validity is two times")
                }
                return (try time(from), try time(to))
            }
        }

        static func time(_ node: ASN1Node) throws -> Date {
            var components = DateComponents()
            components.calendar = Calendar(identifier: .gregorian)
            components.timeZone = TimeZone(identifier: "UTC")
            switch node.identifier {
            case .utcTime:
                let time = try UTCTime(derEncoded: node)
                (components.year, components.month, components.day) = (time.year, time.month, time.day)
                (components.hour, components.minute, components.second) = (time.hours, time.minutes, time.seconds)
            case .generalizedTime:
                let time = try GeneralizedTime(derEncoded: node)
                (components.year, components.month, components.day) = (time.year, time.month, time.day)
                (components.hour, components.minute, components.second) = (time.hours, time.minutes, time.seconds)
            default:
                throw SMError(.malformed, "a time must be UTCTime or GeneralizedTime")
            }
            guard let date = components.date else { throw SMError(.malformed, "an impossible date") }
            return date
        }

        /// Reads the extensions: basicConstraints' cA and pathLenConstraint, and every extension
        /// as it is. An extension twice, or a critical one other than basicConstraints and
        /// keyUsage, is refused, as X.509 requires.
        static func readExtensions(_ node: ASN1Node) throws -> (Bool, Int?, [SM2CertificateExtension]) {
            var isCA = false
            var maxPathLength: Int?
            var found: [SM2CertificateExtension] = []
            try DER.sequence(node, identifier: .sequence) { extensions in
                while let item = extensions.next() {
                    try DER.sequence(item, identifier: .sequence) { parts in
                        guard let idNode = parts.next(), var valueNode = parts.next() else {
                            throw SMError(.malformed, "an extension is an id and a value")
                        }
                        guard idNode.identifier == .objectIdentifier, case .primitive = idNode.content else {
                            throw SMError(.malformed, "an extension's id is not an OBJECT IDENTIFIER")
                        }
                        let id = Array(idNode.encodedBytes)
                        var critical = false
                        if valueNode.identifier == .boolean {
                            critical = try Bool(derEncoded: valueNode)
                            guard let next = parts.next() else {
                                throw SMError(.malformed, "an extension without a value")
                            }
                            valueNode = next
                        }
                        guard parts.next() == nil else {
                            throw SMError(.malformed, "fields after an extension's value")
                        }
                        let value = Array(try ASN1OctetString(derEncoded: valueNode).bytes)
                        guard !found.contains(where: { $0.oid == id }) else {
                            throw SMError(.malformed, "an extension appears twice")
                        }
                        if id == SM2Certificate.basicConstraintsBytes {
                            let inner = try DER.parse(value)
                            try DER.sequence(inner, identifier: .sequence) { fields in
                                var next = fields.next()
                                if let first = next, first.identifier == .boolean {
                                    isCA = try Bool(derEncoded: first)
                                    next = fields.next()
                                }
                                if let length = next {
                                    let number = try Int(derEncoded: length)
                                    guard isCA, number >= 0 else {
                                        throw SMError(
                                            .malformed,
                                            "a path length on a certificate that is not a CA, or a negative one"
                                        )
                                    }
                                    maxPathLength = number
                                }
                                guard fields.next() == nil else {
                                    throw SMError(.malformed, "fields after basicConstraints' path length")
                                }
                            }
                        } else if critical && id != SM2Certificate.keyUsageBytes {
                            let dotted =
                                (try? ASN1ObjectIdentifier(derEncoded: idNode)).map { "\($0)" }
                                ?? "of \(id.count) bytes"
                            throw SMError(.malformed, "an unknown critical extension \(dotted)")
                        }
                        found.append(SM2CertificateExtension(oid: id, critical: critical, value: value))
                    }
                }
            }
            return (isCA, maxPathLength, found)
        }
    }

    // MARK: writing

    /// Signs a certificate for `subjectKey` with `issuerKey` (a self-signed one when they are the
    /// same key and the names are equal). Validity is whole seconds, UTCTime until 2049.
    public static func issue(
        subject: String,
        subjectKey: SM2PublicKey,
        issuer: String,
        issuerKey: SM2PrivateKey,
        serialNumber: [UInt8]? = nil,
        notBefore: Date,
        notAfter: Date,
        isCertificateAuthority: Bool,
        maxPathLength: Int? = nil,
        extensions extra: [SM2CertificateExtension] = [],
        id: [UInt8] = SM2.defaultID
    ) throws(SMError) -> SM2Certificate {
        guard maxPathLength == nil || (isCertificateAuthority && maxPathLength! >= 0) else {
            throw SMError(.malformed, "a path length is for a CA, and not negative")
        }
        do {
            var serial = serialNumber ?? (0..<16).map { _ in UInt8.random(in: 0...255) }
            serial[0] &= 0x7f  // positive
            if serial[0] == 0 { serial[0] = 1 }  // minimal
            var tbs = DER.Serializer()
            try tbs.appendConstructedNode(identifier: .sequence) { fields in
                try fields.serialize(Int(2), explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
                try fields.serialize(ArraySlice(serial))
                try Self.writeAlgorithm(&fields)
                try Self.writeName(issuer, into: &fields)
                try fields.appendConstructedNode(identifier: .sequence) { validity in
                    try Self.writeTime(notBefore, into: &validity)
                    try Self.writeTime(notAfter, into: &validity)
                }
                try Self.writeName(subject, into: &fields)
                try fields.serialize(ASN1Any(derEncoded: try DER.parse(subjectKey.derRepresentation)))
                try fields.appendConstructedNode(
                    identifier: ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific)
                ) { tagged in
                    try tagged.appendConstructedNode(identifier: .sequence) { extensions in
                        var constraints = DER.Serializer()
                        try constraints.appendConstructedNode(identifier: .sequence) { fields in
                            if isCertificateAuthority { try fields.serialize(true) }
                            if let maxPathLength { try fields.serialize(maxPathLength) }
                        }
                        try Self.writeExtension(
                            basicConstraintsOID,
                            critical: true,
                            value: constraints.serializedBytes,
                            into: &extensions
                        )
                        // keyCertSign and cRLSign (bits 5, 6) for a CA; digitalSignature (bit 0) otherwise.
                        let usage =
                            isCertificateAuthority
                            ? ASN1BitString(bytes: [0x06], paddingBits: 1)
                            : ASN1BitString(bytes: [0x80], paddingBits: 7)
                        var usageBytes = DER.Serializer()
                        try usageBytes.serialize(usage)
                        try Self.writeExtension(
                            keyUsageOID,
                            critical: true,
                            value: usageBytes.serializedBytes,
                            into: &extensions
                        )
                        for item in extra {
                            try extensions.appendConstructedNode(identifier: .sequence) { node in
                                try node.serialize(ASN1Any(derEncoded: try DER.parse(item.oid)))
                                if item.critical { try node.serialize(true) }
                                try node.serialize(ASN1OctetString(contentBytes: ArraySlice(item.value)))
                            }
                        }
                    }
                }
            }
            let tbsBytes = tbs.serializedBytes
            let signature = try issuerKey.signature(for: tbsBytes, id: id)
            var certificate = DER.Serializer()
            try certificate.appendConstructedNode(identifier: .sequence) { outer in
                try outer.serialize(ASN1Any(derEncoded: try DER.parse(tbsBytes)))
                try Self.writeAlgorithm(&outer)
                try outer.serialize(ASN1BitString(bytes: ArraySlice(signature)))
            }
            return try SM2Certificate(derRepresentation: certificate.serializedBytes)
        } catch let error as SMError {
            throw error
        } catch {
            throw SMError(.malformed, "cannot write the certificate: \(error)")
        }
    }

    /// A self-signed certificate for `key`.
    public static func selfSigned(
        key: SM2PrivateKey,
        commonName: String,
        notBefore: Date,
        notAfter: Date,
        isCertificateAuthority: Bool,
        id: [UInt8] = SM2.defaultID
    ) throws(SMError) -> SM2Certificate {
        try issue(
            subject: commonName,
            subjectKey: key.publicKey,
            issuer: commonName,
            issuerKey: key,
            notBefore: notBefore,
            notAfter: notAfter,
            isCertificateAuthority: isCertificateAuthority,
            id: id
        )
    }

    static func writeAlgorithm(_ serializer: inout DER.Serializer) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { try $0.serialize(signatureAlgorithm) }
    }

    static func writeName(_ commonName: String, into serializer: inout DER.Serializer) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { rdns in
            try rdns.appendConstructedNode(identifier: .set) { set in
                try set.appendConstructedNode(identifier: .sequence) { attribute in
                    try attribute.serialize(commonNameOID)
                    try attribute.serialize(ASN1UTF8String(commonName))
                }
            }
        }
    }

    static func writeTime(_ date: Date, into serializer: inout DER.Serializer) throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        guard let year = c.year, let month = c.month, let day = c.day, let hour = c.hour, let minute = c.minute,
            let second = c.second
        else {
            throw SMError(.malformed, "an impossible date")
        }
        if (1950..<2050).contains(year) {
            try serializer.serialize(
                try UTCTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second)
            )
        } else {
            try serializer.serialize(
                try GeneralizedTime(
                    year: year,
                    month: month,
                    day: day,
                    hours: hour,
                    minutes: minute,
                    seconds: second,
                    fractionalSeconds: 0
                )
            )
        }
    }

    static func writeExtension(
        _ id: ASN1ObjectIdentifier,
        critical: Bool,
        value: [UInt8],
        into serializer: inout DER.Serializer
    ) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { item in
            try item.serialize(id)
            if critical { try item.serialize(true) }
            try item.serialize(ASN1OctetString(contentBytes: ArraySlice(value)))
        }
    }
}
