import Foundation
import UkeyPolicy

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
    func candidates() throws(APIError) -> [Candidate] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".yaml") }.sorted()
        } catch {
            throw .invalidArgument(reason: "cannot read the policy directory \(path): \(error.localizedDescription)")
        }
        guard names.count <= Self.maxPolicies else {
            throw .invalidArgument(
                reason: "the policy directory \(path) holds \(names.count) policies; the limit is \(Self.maxPolicies)"
            )
        }
        return names.compactMap { name in
            let file = path + "/" + name
            guard let text = FileManager.default.contents(atPath: file), text.count <= PolicyParser.maxPolicyBytes
            else { return nil }
            let signature = FileManager.default.contents(atPath: file + ".sig").map(Array.init)
            let version = try? PolicyParser.parse(bytes: Array(text), file: file).version
            return Candidate(file: file, text: Array(text), signature: signature, version: version)
        }
    }
}
