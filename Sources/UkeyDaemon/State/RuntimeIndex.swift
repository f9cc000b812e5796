import UkeyCore
import UkeyPolicy

/// The run-time whitelist of a policy, indexed at load so a check is two hash lookups, never a
/// scan. Built once per policy and swapped whole, so checks never see half a reload.
struct RuntimeIndex: Sendable {
    struct VMRules: Sendable {
        let defaultDecision: ExecDecision
        /// Allowed digests for each path.
        let allowed: [String: Set<Digest>]
    }

    let vms: [String: VMRules]

    init(_ policy: Policy) {
        var vms: [String: VMRules] = [:]
        for rules in policy.runtime {
            var allowed: [String: Set<Digest>] = [:]
            for entry in rules.allow { allowed[entry.path, default: []].insert(entry.digest) }
            vms[rules.vm] = VMRules(defaultDecision: rules.defaultDecision, allowed: allowed)
        }
        self.vms = vms
    }

    struct Decision: Sendable, Hashable {
        let decision: ExecDecision
        let rule: String?
        let reason: String?
    }

    /// The decision for one executable. `vmTrusted` is the VM's boot-chain state.
    func check(vm: String, path: String, digest: Digest, vmTrusted: Bool, mode: EnforcementMode) -> Decision {
        let verdict: Decision
        if !vmTrusted {
            verdict = Decision(decision: .deny, rule: nil, reason: "vm-not-trusted")
        } else if let rules = vms[vm] {
            if let digests = rules.allowed[path] {
                verdict = digests.contains(digest)
                    ? Decision(decision: .allow, rule: "\(vm):\(path)", reason: nil)
                    : Decision(decision: .deny, rule: "\(vm):\(path)", reason: "digest-mismatch")
            } else {
                verdict = Decision(decision: rules.defaultDecision, rule: "\(vm):default", reason: rules.defaultDecision == .deny ? "not-whitelisted" : nil)
            }
        } else {
            verdict = Decision(decision: .deny, rule: nil, reason: "no-rules-for-vm")
        }
        // Audit mode records the verdict and lets everything run.
        if mode == .audit && verdict.decision == .deny {
            return Decision(decision: .allow, rule: verdict.rule, reason: "audit-mode: would deny (\(verdict.reason ?? "denied"))")
        }
        return verdict
    }
}
