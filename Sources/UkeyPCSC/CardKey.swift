import Crypto
import Foundation
import SwiftASN1
import UkeyPIV
import X509

/// A key in a card's slot, in the shape swift-certificates signs with: it hashes the bytes, and
/// the card signs the digest after its PIN. For the tools (`ukeyctl card`), not the daemon: the
/// synchronous path (swift-certificates' CSR builder has no other) waits for the card.
public struct CardKey: CustomPrivateKey {
    let client: PIVClient
    let slot: PIVSlot
    let pin: String
    public let publicKey: Certificate.PublicKey

    public init(client: PIVClient, slot: PIVSlot, pin: String, publicKey: P256.Signing.PublicKey) {
        self.client = client
        self.slot = slot
        self.pin = pin
        self.publicKey = Certificate.PublicKey(publicKey)
    }

    public var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm { .ecdsaWithSHA256 }
    public var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] { [.ecdsaWithSHA256] }

    public func signSynchronously(
        bytes: some DataProtocol,
        signatureAlgorithm: Certificate.SignatureAlgorithm
    ) throws -> Certificate.Signature {
        guard signatureAlgorithm == .ecdsaWithSHA256 else {
            throw CardError(.refused(0x6A80), "a card key signs ECDSA with SHA-256 only")
        }
        let der = try client.signBlocking(Array(SHA256.hash(data: bytes)), slot: slot, pin: pin)
        return try Certificate.Signature(
            signatureAlgorithm: .ecdsaWithSHA256,
            signatureBytes: ASN1BitString(bytes: ArraySlice(der))
        )
    }

    public func signAsynchronously(
        bytes: some DataProtocol & Sendable,
        signatureAlgorithm: Certificate.SignatureAlgorithm
    ) async throws -> Certificate.Signature {
        guard signatureAlgorithm == .ecdsaWithSHA256 else {
            throw CardError(.refused(0x6A80), "a card key signs ECDSA with SHA-256 only")
        }
        let der = try await client.sign(Array(SHA256.hash(data: bytes)), slot: slot, pin: pin)
        return try Certificate.Signature(
            signatureAlgorithm: .ecdsaWithSHA256,
            signatureBytes: ASN1BitString(bytes: ArraySlice(der))
        )
    }

    public static let defaultPEMDiscriminator = "UKEY CARD KEY"

    public func serialize(into coder: inout DER.Serializer) throws {
        throw CardError(.refused(0x6982), "a card's key never leaves the card")
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.publicKey == rhs.publicKey && lhs.slot == rhs.slot }
    public func hash(into hasher: inout Hasher) { hasher.combine(publicKey) }
}
