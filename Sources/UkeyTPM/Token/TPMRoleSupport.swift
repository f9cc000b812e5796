import Crypto
import Synchronization
import UkeyToken
import X509

/// What the TPM's roles share: the soft token's store (which keeps the certificates the root CA
/// issues for the TPM's keys) and the TPM's errors as token errors.
protocol TPMServedRole: Sendable {
    var records: SoftToken { get }
    var tpm: TPM { get }
    var certificates: CertificateCache { get }
}

extension TPMServedRole {
    /// Runs a TPM command; the TPM's failures become token errors that say it was the TPM.
    func tpmCall<T: Sendable>(_ body: () async throws(TPMError) -> T) async throws(TokenError) -> T {
        do {
            return try await body()
        } catch {
            throw tokenError(error)
        }
    }

    /// The TPM's failures as token errors that say it was the TPM; bad input stays bad input.
    func tokenError(_ error: TPMError) -> TokenError {
        error.code == 0
            ? TokenError(.invalidArgument, error.description)
            : TokenError(.unavailable, "the TPM (\(tpm.tcti)): \(error)")
    }

    /// The root CA's certificate for a TPM key (PEM), and the key as a PEM public key.
    func hardwareCertificate(
        _ name: String,
        point: [UInt8]
    ) async throws(TokenError) -> (certificate: String, key: String) {
        if let cached = certificates.lookup(name, point: point) { return cached }
        let key: P256.Signing.PublicKey
        do {
            key = try P256.Signing.PublicKey(x963Representation: point)
        } catch {
            throw TokenError(.unavailable, "the TPM's \(name) key is not a P-256 point")
        }
        // The TPM's attestation key vouches for TPM2 quotes only: its certificate says so.
        let certificate = try await records.certificate(
            forHardwareKey: name,
            purpose: name == "tpm-audit" ? .audit : .attestation,
            publicKey: key,
            tpm2QuotesOnly: name == "tpm-attestation"
        )
        let entry = (try IdentityCA.pem(certificate), key.pemRepresentation)
        certificates.store(name, point: point, entry)
        return entry
    }

    /// A TPM key's certificate: issued once and kept, since the TPM derives the same key from the
    /// same template; a TPM that is away for a while does not stop verification.
    func hardwareCertificate(
        _ name: String,
        tokenKey: TokenKey,
        point: () async throws(TPMError) -> [UInt8]
    ) async throws(TokenError) -> Certificate {
        if let known = certificates.lookup(name) { return try Self.parse(known.certificate, tokenKey.rawValue) }
        let current: [UInt8]
        do {
            current = try await tpmCall(point)
        } catch {
            if let stored = await records.storedCertificate(named: name) { return stored }
            throw error
        }
        return try Self.parse(try await hardwareCertificate(name, point: current).certificate, tokenKey.rawValue)
    }

    static func parse(_ pem: String, _ name: String) throws(TokenError) -> Certificate {
        do {
            return try Certificate(pemEncoded: pem)
        } catch {
            throw TokenError(.crypto, "the \(name) certificate does not parse: \(error)")
        }
    }
}

/// The PEM certificates of the TPM's keys, kept once issued: the quote path must not parse a
/// certificate from the store each time.
final class CertificateCache: Sendable {
    private let entries = Mutex<[String: (point: [UInt8], certificate: String, key: String)]>([:])

    func lookup(_ name: String) -> (certificate: String, key: String)? {
        entries.withLock { entries in entries[name].map { ($0.certificate, $0.key) } }
    }

    func lookup(_ name: String, point: [UInt8]) -> (certificate: String, key: String)? {
        entries.withLock { entries in
            guard let entry = entries[name], entry.point == point else { return nil }
            return (entry.certificate, entry.key)
        }
    }

    func store(_ name: String, point: [UInt8], _ entry: (certificate: String, key: String)) {
        entries.withLock { $0[name] = (point, entry.certificate, entry.key) }
    }
}
