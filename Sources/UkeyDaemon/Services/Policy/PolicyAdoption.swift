import UkeyAudit
import UkeyToken

/// Adopting a policy spans the policy in force and the boot chain it judges, so it runs here,
/// in one gated section: the version a candidate must exceed is read in the same section that
/// adopts and persists it (two loads sent at once, v3 and v2, cannot both pass the check against
/// v1 and leave v2 in force), and the chain is re-judged before any measurement sees the policy.
extension DaemonServices {
    @discardableResult
    func adopt(
        text: [UInt8],
        signature: [UInt8],
        token: any TrustedRoot,
        source: String
    ) async throws(APIError) -> LoadedPolicy {
        let (policy, boot, allowDemoKeys) = (self.policy, self.boot, tokens.allowDemoKeys)
        let candidate = try await boot.gate.serialized { () async throws(APIError) -> LoadedPolicy in
            let candidate = try await policy.verifyCandidate(
                text: text,
                signature: signature,
                token: token,
                source: source,
                allowDemoKeys: allowDemoKeys
            )
            try await policy.install(candidate, token: token)
            await boot.rebuildChain()
            return candidate
        }
        logger.notice("policy version \(candidate.version) loaded")
        // A rule set that relaxes what a guard judges says so in the audit log, each load.
        for rules in candidate.policy.runtime where rules.interpreters == .allow {
            logger.notice(
                "policy version \(candidate.version): \(rules.vm)'s guard lets interpreters read any script (interpreters: allow)"
            )
            await audit.record(
                "policy-relaxed",
                ["version": .int(candidate.version), "vm": .string(rules.vm), "setting": "interpreters: allow"],
                logger: logger
            )
        }
        return candidate
    }

    /// Loads the directory's newest policy if it is newer than the one in force, and returns the
    /// version in force. `recorded`: the caller records the outcome itself (a varlink call is
    /// audited by the dispatcher); else it is recorded here (start, SIGHUP).
    @discardableResult
    func reloadPolicyDirectory(recorded: Bool = false) async throws(APIError) -> Int? {
        let token = try tokens.require()
        guard let directory = paths.policyDirectory else {
            throw .invalidArgument(reason: "no policy directory is configured (--policy-dir)")
        }
        let candidates = try PolicyDirectory(path: directory).candidates()
        let inForce = await policy.loaded?.version
        // Unparseable files sort first: they may claim any version, so they are refused loudly.
        guard
            let newest = candidates.first(where: { $0.version == nil })
                ?? candidates.max(by: { ($0.version ?? 0) < ($1.version ?? 0) }),
            newest.version.map({ $0 > (inForce ?? 0) }) ?? true
        else {
            logger.info("policy directory \(directory): nothing newer than version \(inForce ?? 0)")
            return inForce
        }
        do throws(APIError) {
            guard let signature = newest.signature else {
                logger.warning(
                    "policy \(newest.file) rejected, the old one stays in force: no signature file \(newest.file).sig"
                )
                throw .policyRejected(reason: "no signature file \(newest.file).sig")
            }
            let candidate = try await adopt(text: newest.text, signature: signature, token: token, source: newest.file)
            if !recorded {
                await audit.record(
                    "policy-load",
                    ["outcome": "loaded", "version": .int(candidate.version), "source": .string(newest.file)],
                    logger: logger
                )
            }
            return candidate.version
        } catch {
            if !recorded {
                await audit.record(
                    "policy-load",
                    [
                        "outcome": "rejected", "source": .string(newest.file),
                        "reason": .string(error.summary),
                    ],
                    logger: logger
                )
            }
            throw error
        }
    }
}
