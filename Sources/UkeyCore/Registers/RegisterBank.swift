/// One bank of measurement registers for one hash algorithm, with TPM extend semantics:
/// `new = H(old || measurement)` (TPM 2.0 Part 1, section 17.2, "PCR Extend").
public struct RegisterBank: Hashable, Sendable {
    public let algorithm: HashAlgorithm
    /// 24 values, each `algorithm.digestSize` bytes; all zero at the start of a boot.
    public private(set) var values: [[UInt8]]

    public init(algorithm: HashAlgorithm) {
        self.algorithm = algorithm
        self.values = Array(
            repeating: Array(repeating: 0, count: algorithm.digestSize),
            count: ExpectedSet.registerCount
        )
    }

    /// Extends register `index` with `measurement` (already the bank's digest size, as a TPM demands).
    public mutating func extend(_ index: Int, with measurement: [UInt8]) throws(UkeyCoreError) {
        guard values.indices.contains(index) else {
            throw UkeyCoreError(.invalidRegister, "register \(index) is outside 0-\(values.count - 1)")
        }
        guard measurement.count == algorithm.digestSize else {
            throw UkeyCoreError(
                .invalidDigest,
                "a \(algorithm.rawValue) register is extended with \(algorithm.digestSize) bytes, got \(measurement.count)"
            )
        }
        values[index] = algorithm.hash(values[index] + measurement)
    }

    public func value(_ index: Int) throws(UkeyCoreError) -> Digest {
        guard values.indices.contains(index) else {
            throw UkeyCoreError(.invalidRegister, "register \(index) is outside 0-\(values.count - 1)")
        }
        return Digest(unchecked: algorithm, values[index])
    }
}
