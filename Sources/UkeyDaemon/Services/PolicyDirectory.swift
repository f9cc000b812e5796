import Foundation
import UkeyAudit
import UkeyPolicy
import UkeyToken
import UkeyVarlink

/// The policy directory (`/etc/ukey/policies/`, `--policy-dir`): where new signed policies are
/// dropped, each `NAME.yaml` with `NAME.yaml.sig` beside it. At start, on SIGHUP and on
/// `Admin.LoadPolicy` without parameters, the daemon takes the highest version found; if that
/// one is newer than the policy in force but fails its checks, it is refused with the reason and
/// the old policy stays (a lower one is not tried instead: what is in force must be predictable).
struct PolicyDirectory {
    let path: String
    static let maxPolicies = 256

    struct Candidate {
        let file: String
        let text: [UInt8]
        let signature: [UInt8]?
        /// nil when the file does not parse (it is then refused by verification with the reason).
        let version: Int?
    }

    /// Every `*.yaml` in the directory with its signature (if any) and version.
    func candidates() throws(VarlinkError) -> [Candidate] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".yaml") }.sorted()
        } catch {
            throw DaemonErrors.invalidArgument("cannot read the policy directory \(path): \(error.localizedDescription)")
        }
        guard names.count <= Self.maxPolicies else {
            throw DaemonErrors.invalidArgument("the policy directory \(path) holds \(names.count) policies; the limit is \(Self.maxPolicies)")
        }
        return names.compactMap { name in
            let file = path + "/" + name
            guard let text = FileManager.default.contents(atPath: file), text.count <= PolicyParser.maxPolicyBytes else { return nil }
            let signature = FileManager.default.contents(atPath: file + ".sig").map(Array.init)
            let version = try? PolicyParser.parse(bytes: Array(text), file: file).version
            return Candidate(file: file, text: Array(text), signature: signature, version: version)
        }
    }
}

extension DaemonCore {
    /// Loads the directory's newest policy if it is newer than the one in force. `recorded`:
    /// the caller records the outcome itself (a varlink call is audited by the dispatcher).
    @discardableResult
    func reloadPolicyDirectory(recorded: Bool = false) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        guard let directory = paths.policyDirectory else {
            throw DaemonErrors.invalidArgument("no policy directory is configured (--policy-dir)")
        }
        let candidates = try PolicyDirectory(path: directory).candidates()
        // Unparseable files sort first: they may claim any version, so they are refused loudly.
        guard let newest = candidates.first(where: { $0.version == nil }) ?? candidates.max(by: { ($0.version ?? 0) < ($1.version ?? 0) }),
            newest.version.map({ $0 > (loaded?.version ?? 0) }) ?? true
        else {
            logger.info("policy directory \(directory): nothing newer than version \(loaded?.version ?? 0)")
            return ["version": loaded.map { .int($0.version) } ?? .null]
        }
        do throws(VarlinkError) {
            guard let signature = newest.signature else {
                logger.warning("policy \(newest.file) rejected, the old one stays in force: no signature file \(newest.file).sig")
                throw VarlinkError("io.ukey.Admin.PolicyRejected", ["reason": .string("no signature file \(newest.file).sig")])
            }
            let candidate = try await verifyAndAdopt(text: newest.text, signature: signature, token: token, source: newest.file)
            if !recorded { await record("policy-load", ["outcome": "loaded", "version": .int(candidate.version), "source": .string(newest.file)]) }
            return ["version": .int(candidate.version)]
        } catch {
            if !recorded {
                await record("policy-load", [
                    "outcome": "rejected", "source": .string(newest.file),
                    "reason": .string(error.parameters["reason"]?.stringValue ?? error.name),
                ])
            }
            throw error
        }
    }
}
