import Crypto
import Foundation
import UkeyCore
import UkeySM
import SwiftASN1
import X509

/// Checks a quote as a remote verifier would: the signature with the attestation certificate's
/// key, the nonce against the one sent, and optionally the certificate against the token's root
/// CA. "ukey-v1" quotes carry the register values; "tpm2" quotes (TPMS_ATTEST) carry their digest,
/// which `verifyTPM2` compares with the values an event log replays to.
public enum QuoteVerifier {
    public struct Verified: Sendable {
        public let quote: UkeyQuote
        /// How it was signed, as the attestation certificate's key says ("ecdsa-p256-sha256", "sm2-sm3").
        public let algorithm: String
    }

    /// Whether `bytes` look like a TPM-generated TPMS_ATTEST rather than a ukey-v1 quote.
    public static func isTPM2(_ bytes: [UInt8]) -> Bool {
        bytes.starts(with: [0xff, 0x54, 0x43, 0x47])
    }

    /// A "tpm2" quote: the TPMT_SIGNATURE over the TPMS_ATTEST by the certified key, the nonce,
    /// and, given the replayed register values, that the quoted PCR digest is theirs.
    public static func verifyTPM2(
        attest bytes: [UInt8],
        signature: [UInt8],
        certificatePEM: String,
        nonce: [UInt8],
        rootCAPEM: String? = nil,
        registerValues: [Int: [UInt8]]? = nil,
        now: Date = Date()
    ) throws(TokenError) -> TPM2Quote {
        let key = try attestationKey(certificatePEM, rootCAPEM: rootCAPEM, now: now)
        guard let leaf = leafCertificate(certificatePEM), KeyPurpose.vouchesOnlyForTPM2Quotes(leaf) else {
            throw TokenError(
                .invalidArgument,
                "the attestation certificate does not say its key is a TPM's (extended key usage \(KeyPurpose.tpm2QuotesOID)): it vouches for no TPM2 quote"
            )
        }
        let ecdsa = try TPM2Quote.ecdsaSignature(parsing: signature)
        guard key.isValidSignature(ecdsa, for: SHA256.hash(data: bytes)) else {
            throw TokenError(.invalidArgument, "the signature does not verify with the attestation key")
        }
        let quote = try TPM2Quote(parsing: bytes)
        guard PinRecord.constantTimeEqual(quote.nonce, nonce) else {
            throw TokenError(.invalidArgument, "the quote's nonce is not the one expected (a replayed quote?)")
        }
        if let registerValues {
            let zero = [UInt8](repeating: 0, count: 32)
            let expected = TPM2Quote.pcrDigest(of: quote.pcrs.map { ($0, registerValues[$0] ?? zero) })
            guard expected == quote.pcrDigest else {
                throw TokenError(
                    .invalidArgument,
                    "the quoted PCRs \(quote.pcrs.map(String.init).joined(separator: ",")) are not the values the event log replays to"
                )
            }
        }
        return quote
    }

    /// Returns the parsed "ukey-v1" quote, or throws with the first reason it fails.
    public static func verify(
        quote bytes: [UInt8],
        signature: [UInt8],
        certificatePEM: String,
        nonce: [UInt8],
        rootCAPEM: String? = nil,
        now: Date = Date(),
        sm2ID: [UInt8] = SM2.defaultID
    ) throws(TokenError) -> Verified {
        // P-256 or SM2, as the attestation certificate says: never the quote's own choice.
        let key = try CertificateBundle.verificationKey(
            certificatePEM,
            for: .attestation,
            rootCAPEM: rootCAPEM,
            now: now,
            sm2ID: sm2ID
        )
        if let leaf = leafCertificate(certificatePEM), KeyPurpose.vouchesOnlyForTPM2Quotes(leaf) {
            throw TokenError(
                .invalidArgument,
                "the attestation key is a TPM's (its certificate names \(KeyPurpose.tpm2QuotesOID)): it vouches only for TPM2 quotes, never for a ukey-v1 quote"
            )
        }
        guard key.isValidSignature(signature, for: bytes) else {
            throw TokenError(
                .invalidArgument,
                "the signature does not verify with the attestation key (\(key.algorithm))"
            )
        }
        let quote = try UkeyQuote(parsing: bytes)
        guard PinRecord.constantTimeEqual(quote.nonce, nonce) else {
            throw TokenError(.invalidArgument, "the quote's nonce is not the one expected (a replayed quote?)")
        }
        return Verified(quote: quote, algorithm: key.algorithm)
    }

    /// The first certificate of a PEM bundle, when it is an X.509 one (SM2 certificates are never
    /// a TPM's).
    static func leafCertificate(_ bundlePEM: String) -> Certificate? {
        guard let first = try? PEMDocument.parseMultiple(pemString: bundlePEM).first else { return nil }
        return try? Certificate(derEncoded: first.derBytes)
    }

    /// The attestation certificate's P-256 key. `certificatePEM` is the attestation key's
    /// certificate, optionally followed by its issuer (the token-keys sub-CA), as `io.ukey.Boot.Quote`'s
    /// `certificate` and `chain` give them. The certificate must say it is an attestation key's
    /// (`KeyPurpose.attestation`) even when no root is given; with the token's root CA, its chain is
    /// checked as well.
    static func attestationKey(
        _ certificatePEM: String,
        rootCAPEM: String?,
        now: Date
    ) throws(TokenError) -> P256.Signing.PublicKey {
        try CertificateBundle.key(certificatePEM, for: .attestation, rootCAPEM: rootCAPEM, now: now)
    }
}
