import Testing
import UkeyCore

@Suite("Register banks")
struct RegisterTests {
    @Test("extend is new = H(old || measurement), 24 registers per bank")
    func extendSemantics() throws {
        for algorithm in HashAlgorithm.allCases {
            var bank = RegisterBank(algorithm: algorithm)
            #expect(bank.values.count == 24)
            let zero = [UInt8](repeating: 0, count: algorithm.digestSize)
            let m1 = algorithm.hash([1])
            let m2 = algorithm.hash([2])
            try bank.extend(23, with: m1)
            try bank.extend(23, with: m2)
            #expect(bank.values[23] == algorithm.hash(algorithm.hash(zero + m1) + m2))
            #expect(bank.values[0] == zero)
            #expect(throws: UkeyCoreError(.invalidRegister, "")) { try bank.extend(24, with: m1) }
            #expect(throws: UkeyCoreError(.invalidRegister, "")) { try bank.extend(-1, with: m1) }
            #expect(throws: UkeyCoreError(.invalidDigest, "")) { try bank.extend(0, with: [1, 2, 3]) }
        }
    }

    @Test("a register set extends every bank from one measurement")
    func allBanks() throws {
        var set = RegisterSet(algorithms: [.sha384])
        #expect(set.algorithms == [.sha256, .sha384])
        let digest = Digest.of([9], using: .sha384)
        try set.extend(10, with: digest)
        #expect(
            try set.value(10, in: .sha384).bytes
                == HashAlgorithm.sha384.hash([UInt8](repeating: 0, count: 48) + digest.bytes)
        )
        #expect(
            try set.value(10, in: .sha256).bytes
                == HashAlgorithm.sha256.hash(
                    [UInt8](repeating: 0, count: 32) + HashAlgorithm.sha256.hash(Array(digest.description.utf8))
                )
        )
        #expect(throws: UkeyCoreError.self) { try set.value(10, in: .sha512) }
    }
}
