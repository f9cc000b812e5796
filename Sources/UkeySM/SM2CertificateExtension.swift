import SwiftASN1

/// One extension of an SM2 certificate as it is on the wire: the OID's DER (tag, length and
/// content, since an OID under a UUID arc has an arc too large for `ASN1ObjectIdentifier`),
/// whether it is critical, and the content of its OCTET STRING. The certificate reader keeps
/// every extension so that a caller can check those it gives meaning to (a certificate policy,
/// an extended key usage); the writer appends a caller's after its own.
public struct SM2CertificateExtension: Sendable, Equatable {
    public let oid: [UInt8]
    public let critical: Bool
    public let value: [UInt8]

    public init(oid: [UInt8], critical: Bool, value: [UInt8]) {
        self.oid = oid
        self.critical = critical
        self.value = value
    }

    /// The DER of a dotted OID whose arcs fit `ASN1ObjectIdentifier`.
    public static func oid(_ identifier: ASN1ObjectIdentifier) -> [UInt8] {
        var serializer = DER.Serializer()
        // An ASN1ObjectIdentifier always serialises.
        try! serializer.serialize(identifier)
        return serializer.serializedBytes
    }
}
