import Crypto
import Foundation
import SwiftASN1
import UkeyToken
import X509

/// A CA's key held by the TPM (keys = tpm: the root CA and its two sub-CAs), in the shape
/// swift-certificates signs with: it hashes the to-be-signed bytes, and the TPM signs the digest.
///
/// Certificates are signed through swift-certificates' asynchronous path
/// (`issuerAsyncPrivateKey`): the signature is awaited from the TPM's actor, between its other
/// commands on its own thread, and no thread of Swift's pool waits for the TPM meanwhile. The
/// soft token signs certificates between two isolated steps for this (see `SoftToken`). The
/// synchronous path is refused, so nothing can block a pool thread on the TPM by mistake.
struct TPMCertificateAuthorityKey: CustomPrivateKey {
    let tpm: TPM
    let authority: CertificateAuthorityKey
    let publicKey: Certificate.PublicKey

    /// Reads the key's public half from the TPM (deriving it from its template).
    init(tpm: TPM, authority: CertificateAuthorityKey) throws(TokenError) {
        let point: [UInt8]
        do {
            point = try tpm.blocking { tpm throws(TPMError) in try tpm.certificateAuthorityKey(authority) }
        } catch {
            throw TokenError(.unavailable, "cannot read the \(authority.rawValue) key from the TPM: \(error)")
        }
        do {
            self.publicKey = Certificate.PublicKey(try P256.Signing.PublicKey(x963Representation: point))
        } catch {
            throw TokenError(.crypto, "the TPM's \(authority.rawValue) key is not a P-256 point: \(error)")
        }
        self.tpm = tpm
        self.authority = authority
    }

    var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm { .ecdsaWithSHA256 }
    var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] { [.ecdsaWithSHA256] }

    func signSynchronously(
        bytes: some DataProtocol,
        signatureAlgorithm: Certificate.SignatureAlgorithm
    ) throws -> Certificate.Signature {
        throw TokenError(
            .crypto,
            "the TPM's \(authority.rawValue) key signs asynchronously only (issuerAsyncPrivateKey)"
        )
    }

    func signAsynchronously(
        bytes: some DataProtocol & Sendable,
        signatureAlgorithm: Certificate.SignatureAlgorithm
    ) async throws -> Certificate.Signature {
        guard signatureAlgorithm == .ecdsaWithSHA256 else {
            throw TokenError(.crypto, "the TPM's CA keys sign with ECDSA and SHA-256 only, not \(signatureAlgorithm)")
        }
        let digest = Array(SHA256.hash(data: bytes))
        let signed: (signature: [UInt8], publicKey: [UInt8])
        do {
            signed = try await tpm.signWithCertificateAuthorityKey(authority, sha256: digest)
        } catch {
            throw TokenError(.unavailable, "the TPM could not sign a certificate: \(error)")
        }
        // The key the TPM derived now must be the one this CA's certificate names.
        guard let point = try? P256.Signing.PublicKey(x963Representation: signed.publicKey),
            Certificate.PublicKey(point) == publicKey
        else {
            throw TokenError(.crypto, "the TPM's \(authority.rawValue) key changed (another TPM, or a cleared one)")
        }
        let ecdsa = try P256.Signing.ECDSASignature(rawRepresentation: signed.signature)
        return try Certificate.Signature(
            signatureAlgorithm: .ecdsaWithSHA256,
            signatureBytes: ASN1BitString(bytes: ArraySlice(ecdsa.derRepresentation))
        )
    }

    // The key never leaves the TPM: there is nothing to write out.
    static let defaultPEMDiscriminator = "UKEY TPM CA KEY"

    func serialize(into coder: inout DER.Serializer) throws {
        throw TokenError(.invalidArgument, "the \(authority.rawValue) key lives in the TPM and cannot be exported")
    }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.publicKey == rhs.publicKey }
    func hash(into hasher: inout Hasher) { hasher.combine(publicKey) }
}
