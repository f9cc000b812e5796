import Foundation
import Logging
import UkeyCore
import UkeyPolicy
import UkeyStore
import UkeyToken
import X509

/// The policy in force and the administrator's mode: checked before adoption, persisted with
/// the sealed record written last, restored and re-verified at start (architecture.md section 5).
@DaemonActor
final class PolicyService {
    let stateDirectory: String
    /// Signed policies dropped here are loaded at start, on SIGHUP and on LoadPolicy without one.
    let policyDirectory: String?
    let logger: Logger
    private(set) var loaded: LoadedPolicy?
    /// An administrator's SetMode, until the next policy is adopted.
    private(set) var modeOverride: EnforcementMode?

    nonisolated init(stateDirectory: String, policyDirectory: String?, logger: Logger) {
        self.stateDirectory = stateDirectory
        self.policyDirectory = policyDirectory
        self.logger = logger
    }

    /// The effective mode: an administrator's SetMode, else the policy's, else enforce.
    var mode: EnforcementMode { modeOverride ?? loaded?.policy.mode ?? .enforce }

    var policyPath: String { stateDirectory + "/policy.yaml" }

    var allowLists: AllowListStore { AllowListStore(stateDirectory: stateDirectory, base: policyDirectory) }

    /// What the token seals about the policy in force: its version and the digest of its bytes.
    struct Record: Codable {
        var version: Int
        var sha256: String
    }

    /// Restores the policy in force and the mode at start. The policy file must be the one the
    /// sealed record names and must still verify with the enrolled signer, or the start fails.
    func restore(from token: any TrustedRoot) async throws {
        if let raw = await token.daemonRecord("mode"),
            let mode = EnforcementMode(rawValue: String(decoding: raw, as: UTF8.self))
        {
            modeOverride = mode
        }
        guard let raw = await token.daemonRecord("policy") else { return }
        let record = try JSONDecoder().decode(Record.self, from: Data(raw))
        let text = try AtomicFile.read(policyPath, limit: PolicyParser.maxPolicyBytes)
        let signature = try AtomicFile.read(policyPath + ".sig", limit: 4096)
        guard Digest.of(text).description == record.sha256 else {
            throw StoreError(
                .integrity,
                path: policyPath,
                "integrity check failed: the policy file is not the one that was loaded (its digest differs from the sealed record)"
            )
        }
        let signer = try await token.policySigner()
        do {
            let store = allowLists
            loaded = try LoadedPolicy.verify(text: text, signature: signature, signer: signer, above: nil) {
                (store.path(for: $0), nil)
            }
        } catch {
            throw StoreError(
                .integrity,
                path: policyPath,
                "integrity check failed: the stored policy no longer verifies: \(error)"
            )
        }
        logger.info("policy version \(record.version) in force")
    }

    /// Checks a policy against the enrolled signer, the linter and the version in force. A refusal
    /// is logged here and is `policyRejected` with the reason; the old policy stays. Called only
    /// inside the gate, with `install` after it, so the version it must exceed cannot change between.
    func verifyCandidate(
        text: [UInt8],
        signature: [UInt8],
        token: any TrustedRoot,
        source: String,
        allowDemoKeys: Bool
    ) async throws(APIError) -> LoadedPolicy {
        let signer: PolicySigner
        do {
            signer = try await token.policySigner()
        } catch {
            throw APIError(error)
        }
        guard allowDemoKeys || !DemoKeys.isDemoPolicySigner(signer) else {
            logger.warning("policy from \(source) rejected: \(DemoKeys.refusal)")
            throw .policyRejected(reason: DemoKeys.refusal)
        }
        let store = allowLists
        do throws(LoadedPolicy.Rejection) {
            let candidate = try LoadedPolicy.verify(
                text: text,
                signature: signature,
                signer: signer,
                above: loaded?.version
            ) { reference throws(LoadedPolicy.Rejection) in
                try store.stage(reference)
            }
            // The registers backend may not extend every register (a TPM: 8-16 and 23 only).
            if let entity = candidate.expected.entities.first(where: {
                !token.registers.usableRegisters.contains($0.register)
            }) {
                let usable = token.registers.usableRegisters.sorted().map(String.init).joined(separator: ", ")
                throw LoadedPolicy.Rejection(
                    "entity '\(entity.name)' uses register \(entity.register), which the \(token.roleBackends["registers"] ?? "") registers cannot extend (usable: \(usable))"
                )
            }
            // SM3 digests are for sites that need SM3 registers: refused where there is no SM3 bank,
            // rather than folded into the SHA-256 bank.
            if candidate.policy.algorithms.contains(.sm3), !token.registers.banks.contains(.sm3) {
                throw LoadedPolicy.Rejection(
                    "the policy's digests use sm3, which needs an sm3 register bank: \(await token.registers.missingBank(.sm3))"
                )
            }
            return candidate
        } catch {
            store.discardStaged()
            logger.warning("policy from \(source) rejected, the old one stays in force: \(error)")
            throw .policyRejected(reason: error.description)
        }
    }

    /// Makes a verified policy the one in force, durably: allow-lists, policy and signature
    /// first, the sealed record last (until it is written, the old policy is the one in force).
    func install(_ candidate: LoadedPolicy, token: any TrustedRoot) async throws(APIError) {
        do {
            try allowLists.commit(candidate.policy)
            try AtomicFile.write(candidate.text, to: policyPath, mode: 0o600)
            try AtomicFile.write(candidate.signature, to: policyPath + ".sig", mode: 0o600)
            let record = Record(version: candidate.version, sha256: Digest.of(candidate.text).description)
            try await token.setDaemonRecords(["policy": Array(try JSONEncoder().encode(record)), "mode": nil])
        } catch {
            allowLists.discardStaged()
            logger.error("cannot store the policy: \(error)")
            throw .internalError
        }
        loaded = candidate
        modeOverride = nil
    }

    /// An administrator's mode, sealed in the token so a restart keeps it.
    func setMode(_ mode: EnforcementMode, token: any TrustedRoot) async throws(APIError) {
        do {
            try await token.setDaemonRecords(["mode": Array(mode.rawValue.utf8)])
        } catch {
            throw APIError(error)
        }
        modeOverride = mode
        logger.notice("mode set to \(mode.rawValue)")
    }
}
