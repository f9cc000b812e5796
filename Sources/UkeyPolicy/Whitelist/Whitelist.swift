import UkeyCore

/// The run-time whitelist of a policy, indexed at load so a check is two hash lookups, never a
/// scan; built once per policy and swapped whole, so a check never sees half a reload.
///
/// Built for lists of millions of entries (architecture.md section 5, `allow-list`): a path is kept as
/// a 128-bit keyed hash (two SipHash-1-3 passes under this process's random seed) and a digest as
/// its first 256 bits, inline, so an entry costs a few dozen bytes and no allocation. The key is
/// secret and new in every process, so nobody can aim a path at a whitelisted one's slot (and a
/// collision would still need the whitelisted file's exact digest to be allowed).
public struct Whitelist: Sendable {
    struct PathKey: Hashable, Sendable {
        let a: UInt64, b: UInt64
        init(bytes: UnsafeRawBufferPointer) {
            var first = Hasher()
            var second = Hasher()
            first.combine(UInt8(0xA5))
            second.combine(UInt8(0x5A))
            first.combine(bytes: bytes)
            second.combine(bytes: bytes)
            a = UInt64(bitPattern: Int64(first.finalize()))
            b = UInt64(bitPattern: Int64(second.finalize()))
        }
        init(_ path: String) {
            var path = path
            self = path.withUTF8 { PathKey(bytes: UnsafeRawBufferPointer($0)) }
        }
    }

    struct DigestKey: Hashable, Sendable {
        let a: UInt64, b: UInt64, c: UInt64, d: UInt64
        let algorithm: UInt8
        init(_ digest: UkeyCore.Digest) {
            self = digest.bytes.withUnsafeBytes { DigestKey(bytes: $0, algorithm: digest.algorithm) }
        }
        /// The first 32 bytes of `bytes` (a whole SHA-256; a prefix of a longer digest).
        init(bytes: UnsafeRawBufferPointer, algorithm: HashAlgorithm) {
            a = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
            b = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            c = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
            d = bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
            self.algorithm = UInt8(HashAlgorithm.allCases.firstIndex(of: algorithm) ?? 0)
        }

    }

    struct VMRules: Sendable {
        var defaultDecision: ExecDecision
        /// One allowed digest per path; a path allowed with several digests keeps the rest in `more`.
        var allowed: [PathKey: DigestKey] = [:]
        var more: [PathKey: [DigestKey]] = [:]
        var count = 0
        /// The SHA-256 entries' `ExecFingerprint`s, in the order they were added, for the VM's
        /// guards (entries with another digest are only ever asked about).
        var fingerprints: [ExecFingerprint] = []
        let fingerprint: ExecFingerprint.Prefix

        init(vm: String, defaultDecision: ExecDecision) {
            self.defaultDecision = defaultDecision
            fingerprint = ExecFingerprint.Prefix(vm: vm)
        }

        mutating func add(path: String, digest: UkeyCore.Digest) {
            var path = path
            let prefix = fingerprint
            let fingerprint =
                digest.algorithm == .sha256
                ? path.withUTF8 { pathBytes in
                    digest.bytes.withUnsafeBytes {
                        prefix.fingerprint(path: UnsafeRawBufferPointer(pathBytes), sha256: $0)
                    }
                }
                : nil
            add(PathKey(path), DigestKey(digest), fingerprint: fingerprint)
        }

        /// An allow-list entry from raw bytes (the reader's fast path).
        mutating func add(pathBytes: UnsafeRawBufferPointer, sha256: UnsafeRawBufferPointer) {
            let prefix = fingerprint
            add(
                PathKey(bytes: pathBytes),
                DigestKey(bytes: sha256, algorithm: .sha256),
                fingerprint: prefix.fingerprint(path: pathBytes, sha256: sha256)
            )
        }

        mutating func add(_ key: PathKey, _ value: DigestKey, fingerprint: @autoclosure () -> ExecFingerprint?) {
            if let existing = allowed[key] {
                guard existing != value, !(more[key]?.contains(value) ?? false) else { return }
                more[key, default: []].append(value)
            } else {
                allowed[key] = value
            }
            count += 1
            if let fingerprint = fingerprint() { fingerprints.append(fingerprint) }
        }
    }

    var vms: [String: VMRules] = [:]
    /// Each VM's on-timeout, where its rule set names one.
    var onTimeouts: [String: ExecDecision] = [:]
    /// VMs whose rule set lets interpreters read any script (`interpreters: allow`).
    public private(set) var interpretersAllowed: Set<String> = []

    /// The whitelist of the policy's inline `allow` entries; `allow-list` files are added with `add`.
    public init(_ policy: Policy) {
        for rules in policy.runtime {
            var vm = VMRules(vm: rules.vm, defaultDecision: rules.defaultDecision)
            for entry in rules.allow { vm.add(path: entry.path, digest: entry.digest) }
            vms[rules.vm] = vm
            if let onTimeout = rules.onTimeout { onTimeouts[rules.vm] = onTimeout }
            if rules.interpreters == .allow { interpretersAllowed.insert(rules.vm) }
        }
    }

    /// What a guard of `vm` does with the scripts interpreters read.
    public func interpreters(vm: String?) -> InterpreterRule {
        vm.map { interpretersAllowed.contains($0) } == true ? .allow : .check
    }

    /// What an exec guard of `vm` answers when it cannot ask in time: the rule set's on-timeout,
    /// else deny when enforcing and allow in audit mode.
    public func onTimeout(vm: String?, mode: EnforcementMode) -> ExecDecision {
        vm.flatMap { onTimeouts[$0] } ?? (mode == .enforce ? .deny : .allow)
    }

    /// Adds an entry to a VM's rules (the VM must have a rule set in the policy).
    public mutating func add(vm: String, path: String, digest: UkeyCore.Digest) {
        vms[vm]?.add(path: path, digest: digest)
    }

    /// Adds an allow-list entry from raw bytes: the path's UTF-8 and a SHA-256 digest's 32 bytes
    /// (the allow-list reader's fast path: no String, no array per entry).
    public mutating func add(vm: String, pathBytes: UnsafeRawBufferPointer, sha256: UnsafeRawBufferPointer) {
        vms[vm]?.add(pathBytes: pathBytes, sha256: sha256)
    }

    /// Makes room for `count` more entries of a VM (a list's size is known before it is read).
    public mutating func reserve(vm: String, count: Int) {
        let current = vms[vm]?.allowed.count ?? 0
        vms[vm]?.allowed.reserveCapacity(current + count)
        vms[vm]?.fingerprints.reserveCapacity(current + count)
    }

    /// Allowed (path, digest) pairs per VM.
    public var counts: [String: Int] { vms.mapValues(\.count) }

    /// The fingerprints of a VM's allowed SHA-256 entries, unordered; nil for a VM without rules.
    public func fingerprints(vm: String) -> [ExecFingerprint]? {
        vms[vm]?.fingerprints
    }

    /// The VMs with rules.
    public var vmNames: [String] { Array(vms.keys) }

    /// A decision and why.
    public struct Verdict: Sendable, Hashable {
        public let decision: ExecDecision
        public let rule: String?
        public let reason: String?
    }

    /// The decision for one executable. `vmTrusted` is the VM's boot-chain state: run-time trust
    /// rests on boot-time trust.
    public func check(
        vm: String,
        path: String,
        digest: UkeyCore.Digest,
        vmTrusted: Bool,
        mode: EnforcementMode
    ) -> Verdict {
        let verdict: Verdict
        if !vmTrusted {
            verdict = Verdict(decision: .deny, rule: nil, reason: "vm-not-trusted")
        } else if let rules = vms[vm] {
            let key = PathKey(path)
            if let first = rules.allowed[key] {
                let wanted = DigestKey(digest)
                verdict =
                    first == wanted || rules.more[key]?.contains(wanted) == true
                    ? Verdict(decision: .allow, rule: "\(vm):\(path)", reason: nil)
                    : Verdict(decision: .deny, rule: "\(vm):\(path)", reason: "digest-mismatch")
            } else {
                verdict = Verdict(
                    decision: rules.defaultDecision,
                    rule: "\(vm):default",
                    reason: rules.defaultDecision == .deny ? "not-whitelisted" : nil
                )
            }
        } else {
            verdict = Verdict(decision: .deny, rule: nil, reason: "no-rules-for-vm")
        }
        // Audit mode records the verdict and lets everything run.
        if mode == .audit && verdict.decision == .deny {
            return Verdict(
                decision: .allow,
                rule: verdict.rule,
                reason: "audit-mode: would deny (\(verdict.reason ?? "denied"))"
            )
        }
        return verdict
    }
}
