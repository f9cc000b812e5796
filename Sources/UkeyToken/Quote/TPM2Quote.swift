import UkeyCodec
import Crypto
import UkeyCore

/// A "tpm2" quote as ukeyd returns it: TPMS_ATTEST bytes of a TPM2_Quote and its TPMT_SIGNATURE
/// (TCG TPM 2.0 Part 2, sections 10.12 and 11.3), parsed from untrusted bytes with every length
/// checked. All integers are big-endian.
public struct TPM2Quote: Sendable, Hashable {
    public static let format = "tpm2"
    /// TPM_GENERATED_VALUE: only the TPM itself writes structures that start so.
    static let generated: UInt32 = 0xff54_4347
    static let attestQuote: UInt16 = 0x8018
    static let maxBytes = 2048

    /// The qualifying data (ukey's nonce).
    public let nonce: [UInt8]
    /// TPMS_CLOCK_INFO: reset and restart counts tell a verifier whether the TPM rebooted.
    public let clock: UInt64
    public let resetCount: UInt32
    public let restartCount: UInt32
    /// SHA-256 PCR indices selected, ascending.
    public let pcrs: [Int]
    /// The digest of the selected PCRs' values, concatenated in ascending order.
    public let pcrDigest: [UInt8]

    public init(parsing bytes: [UInt8]) throws(TokenError) {
        guard bytes.count <= Self.maxBytes else {
            throw TokenError(.invalidArgument, "a TPMS_ATTEST is at most \(Self.maxBytes) bytes")
        }
        var reader = BigEndianReader(bytes, what: "TPMS_ATTEST", endianness: .big) { TokenError(.invalidArgument, $0) }
        guard try reader.u32("magic") == Self.generated else {
            throw TokenError(.invalidArgument, "not a TPM-generated structure (bad magic)")
        }
        guard try reader.u16("type") == Self.attestQuote else {
            throw TokenError(.invalidArgument, "the TPMS_ATTEST is not a quote")
        }
        _ = try reader.sized("qualifiedSigner", max: 68)
        nonce = try reader.sized("extraData", max: 64)
        clock = try reader.u64("clock")
        resetCount = try reader.u32("resetCount")
        restartCount = try reader.u32("restartCount")
        _ = try reader.read(1, "safe")
        _ = try reader.u64("firmwareVersion")
        let selections = try reader.u32("pcrSelect count")
        guard selections <= 16 else { throw TokenError(.invalidArgument, "the quote selects \(selections) banks") }
        var pcrs: [Int] = []
        var sha256Selected = false
        for _ in 0..<selections {
            let hash = try reader.u16("pcrSelect hash")
            let size = Int(try reader.read(1, "sizeofSelect")[0])
            guard size <= 4 else { throw TokenError(.invalidArgument, "a PCR selection of \(size) bytes") }
            let mask = try reader.read(size, "pcrSelect")
            guard hash == HashAlgorithm.sha256.tcgAlgorithmID else {
                if mask.contains(where: { $0 != 0 }) {
                    throw TokenError(.invalidArgument, "the quote selects PCRs of a bank other than SHA-256")
                }
                continue
            }
            // A TPM lists each bank once. Found by fuzzing: the SHA-256 bank given several times
            // was read as one selection with PCRs repeated, which no TPM quotes and no verifier
            // should take.
            guard !sha256Selected else {
                throw TokenError(.invalidArgument, "the quote selects the SHA-256 bank twice")
            }
            sha256Selected = true
            for (byte, bits) in mask.enumerated() {
                for bit in 0..<8 where bits & (1 << bit) != 0 { pcrs.append(byte * 8 + bit) }
            }
        }
        self.pcrs = pcrs.sorted()
        pcrDigest = try reader.sized("pcrDigest", max: 64)
        guard reader.isAtEnd else {
            throw TokenError(.invalidArgument, "the TPMS_ATTEST has \(reader.remaining) trailing bytes")
        }
    }

    /// The raw r || s of an ECDSA-SHA256 TPMT_SIGNATURE.
    public static func ecdsaSignature(parsing bytes: [UInt8]) throws(TokenError) -> P256.Signing.ECDSASignature {
        guard bytes.count <= 256 else { throw TokenError(.invalidArgument, "a TPMT_SIGNATURE is at most 256 bytes") }
        var reader = BigEndianReader(bytes, what: "TPMT_SIGNATURE", endianness: .big) {
            TokenError(.invalidArgument, $0)
        }
        guard try reader.u16("sigAlg") == 0x0018, try reader.u16("hash") == HashAlgorithm.sha256.tcgAlgorithmID else {
            throw TokenError(.invalidArgument, "the signature is not ECDSA with SHA-256")
        }
        let r = try reader.sized("signatureR", max: 32)
        let s = try reader.sized("signatureS", max: 32)
        guard reader.isAtEnd else { throw TokenError(.invalidArgument, "the TPMT_SIGNATURE has trailing bytes") }
        func padded(_ v: [UInt8]) -> [UInt8] { [UInt8](repeating: 0, count: 32 - v.count) + v }
        do {
            return try P256.Signing.ECDSASignature(rawRepresentation: padded(r) + padded(s))
        } catch {
            throw TokenError(.invalidArgument, "the ECDSA signature is malformed")
        }
    }

    /// The digest a TPM puts in `pcrDigest` for these SHA-256 values, ascending by index.
    public static func pcrDigest(of values: [(index: Int, value: [UInt8])]) -> [UInt8] {
        Array(SHA256.hash(data: values.sorted { $0.index < $1.index }.flatMap(\.value)))
    }
}

/// TPM structures are big-endian (TPM 2.0 Part 1, "Marshaling").
typealias BigEndianReader = ByteReader<TokenError>
