import UkeyCore
import UkeyVarlink

/// `io.ukey.Runtime`: the application whitelist, on top of boot-time trust.
extension DaemonCore {
    func checkExec(vm: String, path: String, digest: Digest) throws(VarlinkError) -> [String: JSONValue] {
        _ = try requireToken()
        guard let loaded else { throw DaemonErrors.noPolicy() }
        let decision = loaded.index.check(
            vm: vm,
            path: path,
            digest: digest,
            vmTrusted: chain?.state(of: vm) == .trusted,
            mode: mode
        )
        return [
            "decision": .string(decision.decision.rawValue),
            "rule": decision.rule.map(JSONValue.string) ?? .null,
            "reason": decision.reason.map(JSONValue.string) ?? .null,
        ]
    }
}
