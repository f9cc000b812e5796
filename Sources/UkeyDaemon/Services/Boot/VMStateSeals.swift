import Foundation
import UkeyCore

/// What each VM's writable components (its disk, its NVRAM) held when it last stopped: the
/// paper's "incremental part" of a user VM is the user's state, and it changes every run, so a
/// fixed digest in the signed policy cannot judge it. ukeyd seals the state at every stop (the
/// libvirt hook's `release end`, ukey-qemu when its qemu exits), and the next start must find it.
///
/// Kept in the token's sealed store (record `vm-states`), so it is written durably with the rest
/// of the store and covered by the same rollback defence (the TPM NV counter on the tpm backend):
/// a state directory put back from an older copy is refused as a whole, and an older disk put
/// back beside the current store is `changed-since-stop`.
struct VMStateSeals: Sendable, Equatable {
    static let record = "vm-states"
    /// The store holds one record per writable component of the policies it served; far fewer.
    static let maxBytes = 4 << 20

    struct Seal: Codable, Sendable, Equatable {
        /// What the component held when sealed.
        var digest: String
        /// The policy's digest of the component when it was sealed: a policy that enrols a new
        /// first state (another digest) starts the component afresh from it.
        var base: String
        /// The file hashed.
        var path: String?
        /// RFC 3339, UTC.
        var sealedAt: String
        /// `release` (the VM stopped) or `accept` (an administrator took the state as it is).
        var by: String
        /// The boot session in which it was sealed.
        var boot: String
        /// Who accepted it (`accept` only).
        var uid: UInt32?
    }

    /// VM -> component -> its seal.
    private(set) var seals: [String: [String: Seal]] = [:]

    init() {}

    /// Reads the store's record; a record that does not decode is a store that cannot be trusted.
    init(record bytes: [UInt8]) throws {
        guard bytes.count <= Self.maxBytes else {
            throw SealError("the sealed VM states are \(bytes.count) bytes, more than \(Self.maxBytes)")
        }
        seals = try JSONDecoder().decode([String: [String: Seal]].self, from: Data(bytes))
    }

    var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(seals)) ?? Data("{}".utf8))
    }

    func seal(of vm: String, _ component: String) -> Seal? { seals[vm]?[component] }

    /// The state a writable component must hold at a start: its seal, when the seal grew from the
    /// policy's digest in force; nil means the policy's digest (never sealed, or enrolled anew).
    func expected(vm: String, component: Component) -> Digest? {
        guard component.writable, let seal = seals[vm]?[component.name], seal.base == component.expected.description
        else { return nil }
        return try? Digest(parsing: seal.digest)
    }

    /// The seals with `component`'s replaced.
    func sealing(vm: String, component: String, _ seal: Seal) -> VMStateSeals {
        var copy = self
        copy.seals[vm, default: [:]][component] = seal
        return copy
    }

    var vms: [String] { seals.keys.sorted() }

    /// The seals `keep` says yes to.
    func keeping(_ keep: (_ vm: String, _ component: String) -> Bool) -> VMStateSeals {
        var copy = VMStateSeals()
        for (vm, components) in seals {
            let kept = components.filter { keep(vm, $0.key) }
            if !kept.isEmpty { copy.seals[vm] = kept }
        }
        return copy
    }

    struct SealError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}
