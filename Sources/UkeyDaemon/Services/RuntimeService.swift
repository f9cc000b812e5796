import UkeyCore
import UkeyPolicy
import UkeyVarlink

/// The policy's whitelist with this boot's trusted VMs and the mode: one immutable value,
/// replaced whole whenever any of them changes.
struct RuntimeView: Sendable {
    let whitelist: Whitelist
    /// VMs with run-time rules that are trusted in the current boot chain.
    let trusted: Set<String>
    let mode: EnforcementMode
}

/// `io.ukey.Runtime`: the application whitelist, on top of boot-time trust. Runs on the
/// caller's connection, not on the core actor.
extension DaemonCore {
    nonisolated func checkExec(vm: String, path: String, digest: Digest) throws(VarlinkError) -> [String: JSONValue] {
        guard let view = runtime.withLockedValue({ $0 }) else { throw DaemonErrors.noPolicy() }
        let verdict = view.whitelist.check(vm: vm, path: path, digest: digest, vmTrusted: view.trusted.contains(vm), mode: view.mode)
        return [
            "decision": .string(verdict.decision.rawValue),
            "rule": verdict.rule.map(JSONValue.string) ?? .null,
            "reason": verdict.reason.map(JSONValue.string) ?? .null,
        ]
    }
}
