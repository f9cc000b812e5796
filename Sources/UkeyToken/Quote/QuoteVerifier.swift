import Crypto
import Foundation
import UkeyCore
import X509

/// Checks a "ukey-v1" quote as a remote verifier would: the signature with the attestation
/// certificate's key, the nonce against the one sent, and optionally the certificate against the
/// token's root CA.
public enum QuoteVerifier {
    public struct Verified: Sendable {
        public let quote: UkeyQuote
    }

    /// Returns the parsed quote, or throws with the first reason it fails.
    public static func verify(
        quote bytes: [UInt8],
        signature: [UInt8],
        certificatePEM: String,
        nonce: [UInt8],
        rootCAPEM: String? = nil,
        now: Date = Date()
    ) throws(TokenError) -> Verified {
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw TokenError(.invalidArgument, "the attestation certificate is not PEM X.509: \(error)")
        }
        guard let key = P256.Signing.PublicKey(certificate.publicKey) else {
            throw TokenError(.invalidArgument, "the attestation certificate's key is not ECDSA P-256")
        }
        let ecdsa: P256.Signing.ECDSASignature
        do {
            ecdsa = try P256.Signing.ECDSASignature(derRepresentation: signature)
        } catch {
            throw TokenError(.invalidArgument, "the signature is not a DER ECDSA signature")
        }
        guard key.isValidSignature(ecdsa, for: SHA256.hash(data: bytes)) else {
            throw TokenError(.invalidArgument, "the signature does not verify with the attestation key")
        }
        let quote = try UkeyQuote(parsing: bytes)
        guard PinRecord.constantTimeEqual(quote.nonce, nonce) else {
            throw TokenError(.invalidArgument, "the quote's nonce is not the one expected (a replayed quote?)")
        }
        if let rootCAPEM {
            let root: Certificate
            do {
                root = try Certificate(pemEncoded: rootCAPEM)
            } catch {
                throw TokenError(.invalidArgument, "the root CA is not PEM X.509: \(error)")
            }
            if let problem = IdentityCA.verify(certificate, issuedBy: root, at: now) {
                throw TokenError(.invalidArgument, "the attestation \(problem)")
            }
        }
        return Verified(quote: quote)
    }
}
