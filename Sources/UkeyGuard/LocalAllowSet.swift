import UkeyVarlink

/// A VM's allowed execs as ukeyd published them for one generation of its decision state: the
/// sorted fingerprints of (VM, path, SHA-256). 16 bytes an entry (16 MB for a million), found by
/// binary search. Valid only for its generation: the guard stops using it the moment it learns
/// the generation moved, exactly as it drops its cache.
public struct LocalAllowSet: Sendable {
    public let vm: String
    public let generation: UInt64
    private let sorted: [ExecFingerprint]

    public init(vm: String, generation: UInt64, fingerprints: [ExecFingerprint]) {
        self.vm = vm
        self.generation = generation
        sorted = fingerprints.sorted()
    }

    public var count: Int { sorted.count }

    public func allows(path: String, sha256: [UInt8]) -> Bool {
        contains(ExecFingerprint(vm: vm, path: path, sha256: sha256))
    }

    func contains(_ wanted: ExecFingerprint) -> Bool {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < wanted { low = middle + 1 } else { high = middle }
        }
        return low < sorted.count && sorted[low] == wanted
    }
}
