/// The registers of a boot: one bank per hash algorithm, extended together by every measurement,
/// as a TPM extends all its active PCR banks from one event.
public struct RegisterSet: Hashable, Sendable {
    public internal(set) var banks: [HashAlgorithm: RegisterBank]

    /// Banks for `algorithms` (at least SHA-256, which every consumer of ukey can check).
    public init(algorithms: Set<HashAlgorithm> = [.sha256]) {
        var banks: [HashAlgorithm: RegisterBank] = [:]
        for algorithm in algorithms.union([.sha256]) { banks[algorithm] = RegisterBank(algorithm: algorithm) }
        self.banks = banks
    }

    /// The algorithms of the banks, smallest first.
    public var algorithms: [HashAlgorithm] { banks.keys.sorted() }

    /// Extends `register` in every bank with the measurement `digest` as that bank records it
    /// (`Digest.measurement(for:)`).
    public mutating func extend(_ register: Int, with digest: Digest) throws(UkeyCoreError) {
        for algorithm in algorithms {
            try banks[algorithm]!.extend(register, with: digest.measurement(for: algorithm))
        }
    }

    /// The value of `register` in the `algorithm` bank.
    public func value(_ register: Int, in algorithm: HashAlgorithm = .sha256) throws(UkeyCoreError) -> Digest {
        guard let bank = banks[algorithm] else {
            throw UkeyCoreError(.invalidDigest, "there is no \(algorithm.rawValue) register bank")
        }
        return try bank.value(register)
    }
}

extension Digest {
    /// The bytes this measurement extends into a bank of `bank`'s algorithm.
    ///
    /// A bank of the digest's own algorithm takes the digest bytes. Another bank cannot rehash the
    /// measured file from its digest, so it takes the hash of the digest's text form
    /// (`"sha384:<hex>"`), the way TPM2_PCR_Event hashes event data for every bank. The rule is fixed
    /// so any verifier that replays the event log gets the same registers.
    public func measurement(for bank: HashAlgorithm) -> [UInt8] {
        bank == algorithm ? bytes : bank.hash(Array(description.utf8))
    }
}
