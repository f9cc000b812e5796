import Foundation
import UkeyCore
import UkeyPolicy
import UkeyStore

/// Where the daemon keeps its own copies of a policy's allow-lists: `STATE/allow-lists/<hex>.list`,
/// named by digest. A policy is checked against the copy it will later restore from, so editing
/// the original in /etc afterwards changes nothing, and a restart does not need /etc at all.
struct AllowListStore {
    let directory: String
    /// Relative `file` names resolve here (the policy directory); absolute ones stand.
    let base: String?

    init(stateDirectory: String, base: String?) {
        self.directory = stateDirectory + "/allow-lists"
        self.base = base
    }

    func path(for reference: AllowListReference) -> String {
        directory + "/" + Hex.encode(reference.digest.bytes) + ".list"
    }

    func stagedPath(for reference: AllowListReference) -> String { path(for: reference) + ".staged" }

    /// Where to read a referenced list and where to stage the copy that is read from it; the copy
    /// becomes the stored one only with `commit`, after the policy (and so its digest) verified.
    func stage(_ reference: AllowListReference) throws(LoadedPolicy.Rejection) -> (source: String, copy: String?) {
        let source: String
        if reference.file.hasPrefix("/") {
            source = reference.file
        } else if let base {
            source = base + "/" + reference.file
        } else {
            throw LoadedPolicy.Rejection(
                "the allow-list '\(reference.file)' is relative, and no policy directory is configured: give an absolute path"
            )
        }
        do {
            try StatePermissions.ensureDirectory(directory)
        } catch {
            throw LoadedPolicy.Rejection("cannot prepare \(directory): \(error)")
        }
        return (source, stagedPath(for: reference))
    }

    /// Makes the staged copies of a verified policy the stored ones.
    func commit(_ policy: Policy) throws {
        for reference in policy.runtime.compactMap(\.allowList) {
            let staged = stagedPath(for: reference)
            guard FileManager.default.fileExists(atPath: staged) else { continue }
            if rename(staged, path(for: reference)) != 0 {
                throw StoreError(.io, path: staged, "cannot store the allow-list: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Removes staged copies left by a refused policy.
    func discardStaged() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasSuffix(".staged") {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }
}
