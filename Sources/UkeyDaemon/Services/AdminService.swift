import Crypto
import Foundation
import UkeyCodec
import UkeyCore
import UkeyToken
import UkeyVarlink
import X509

/// `io.ukey.Admin`: provisioning.
extension DaemonCore {
    func initialize(soPIN: String, policySignerPEM: String) async throws(VarlinkError) -> [String: JSONValue] {
        guard token == nil, !provider.isInitialized() else { throw VarlinkError("io.ukey.Admin.AlreadyInitialized") }
        let signer: Certificate
        do {
            signer = try Certificate(pemEncoded: PEMText.firstBlock(of: policySignerPEM))
        } catch {
            throw DaemonErrors.invalidArgument("policySigner is not a PEM X.509 certificate")
        }
        guard P256.Signing.PublicKey(signer.publicKey) != nil else {
            throw DaemonErrors.invalidArgument("the policy signer's key must be ECDSA P-256")
        }
        guard allowDemoKeys || !DemoKeys.isDemoPolicySigner(signer) else {
            throw DaemonErrors.invalidArgument(DemoKeys.refusal)
        }
        do {
            let created = try provider.initialize(soPIN: soPIN, policySigner: signer, bootID: bootID)
            token = created
            // A new token has a new audit key: an earlier log is kept aside, and a new one begins.
            if FileManager.default.fileExists(atPath: auditPath) {
                let aside = auditPath + ".before-" + ISO8601DateFormatter().string(from: clock())
                try? FileManager.default.moveItem(atPath: auditPath, toPath: aside)
                logger.notice("the earlier audit log was moved to \(aside)")
            }
            do {
                try await openAudit(created)
            } catch {
                logger.error("cannot open the audit log: \(error)")
                throw DaemonErrors.internalError()
            }
            let serial = await created.serial
            logger.notice("token initialised (\(created.backendName), serial \(serial))")
            return ["rootCertificate": .string(try IdentityCA.pem(await created.certificate(named: "root-ca")))]
        } catch let error as TokenError {
            throw DaemonErrors.from(error)
        } catch let error as VarlinkError {
            throw error
        } catch {
            throw DaemonErrors.internalError()
        }
    }

    func status() async -> [String: JSONValue] {
        let users = await token?.userNames().count ?? 0
        return [
            "initialized": .bool(token != nil),
            "backend": .string(provider.backendName),
            "roles": token.map { .object($0.roleBackends.mapValues(JSONValue.string)) } ?? .null,
            "policyVersion": loaded.map { .int($0.version) } ?? .null,
            "mode": .string(mode.rawValue),
            "bootId": .string(bootID),
            "users": .int(users),
            "entities": .int(loaded?.expected.entities.count ?? 0),
            "measurements": .int(measurements.count),
            "measurementBatches": .int(measurementBatches),
        ]
    }

    func loadPolicy(text: [UInt8], signature: [UInt8]) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        let candidate = try await verifyAndAdopt(text: text, signature: signature, token: token, source: "the call")
        return ["version": .int(candidate.version)]
    }

    /// Checks a policy and makes it the one in force, in one serialized section: the version it
    /// must exceed is read in the same section that adopts and persists it, so two loads sent at
    /// once (v3 and v2) cannot both pass the check against v1 and leave v2 in force.
    func verifyAndAdopt(text: [UInt8], signature: [UInt8], token: any TrustedRoot, source: String) async throws(VarlinkError) -> LoadedPolicy {
        let outcome: Result<LoadedPolicy, VarlinkError> = await serialized { () async -> Result<LoadedPolicy, VarlinkError> in
            do throws(VarlinkError) {
                let candidate = try await verifyCandidate(text: text, signature: signature, token: token, source: source)
                try await install(candidate, token: token)
                return .success(candidate)
            } catch {
                return .failure(error)
            }
        }
        let candidate = try outcome.get()
        logger.notice("policy version \(candidate.version) loaded")
        return candidate
    }

    /// Checks a policy against the enrolled signer, the linter and the version in force. A refusal
    /// is logged here and returned as PolicyRejected with the reason; the old policy stays.
    /// Called only inside `serialized`, with `install` after it.
    func verifyCandidate(text: [UInt8], signature: [UInt8], token: any TrustedRoot, source: String) async throws(VarlinkError) -> LoadedPolicy {
        let signer: Certificate
        do {
            signer = try await token.certificate(named: "policy-signer")
        } catch {
            throw DaemonErrors.from(error)
        }
        guard allowDemoKeys || !DemoKeys.isDemoPolicySigner(signer) else {
            logger.warning("policy from \(source) rejected: \(DemoKeys.refusal)")
            throw VarlinkError("io.ukey.Admin.PolicyRejected", ["reason": .string(DemoKeys.refusal)])
        }
        let store = allowLists
        do throws(LoadedPolicy.Rejection) {
            let candidate = try LoadedPolicy.verify(text: text, signature: signature, signer: signer, above: loaded?.version) { reference throws(LoadedPolicy.Rejection) in
                try store.stage(reference)
            }
            // The registers backend may not extend every register (a TPM: 8-16 and 23 only).
            if let entity = candidate.expected.entities.first(where: { !token.usableRegisters.contains($0.register) }) {
                let usable = token.usableRegisters.sorted().map(String.init).joined(separator: ", ")
                throw LoadedPolicy.Rejection("entity '\(entity.name)' uses register \(entity.register), which the \(token.roleBackends["registers"] ?? "") registers cannot extend (usable: \(usable))")
            }
            return candidate
        } catch {
            store.discardStaged()
            logger.warning("policy from \(source) rejected, the old one stays in force: \(error)")
            throw VarlinkError("io.ukey.Admin.PolicyRejected", ["reason": .string(error.description)])
        }
    }

    /// Makes a verified policy the one in force, durably. Runs inside `serialized`, right after
    /// `verifyCandidate` checked it against the policy in force.
    private func install(_ candidate: LoadedPolicy, token: any TrustedRoot) async throws(VarlinkError) {
        do {
            try await persistPolicy(candidate, token: token)
        } catch {
            allowLists.discardStaged()
            logger.error("cannot store the policy: \(error)")
            throw DaemonErrors.internalError()
        }
        loaded = candidate
        modeOverride = nil
        rebuildChain()
    }

    func addUser(_ user: String, pin: String, roles: [String]) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        do {
            let certificate = try await token.addUserReturningCertificate(user, pin: pin, roles: roles)
            logger.notice("user added: \(user)")
            return ["certificate": .string(try IdentityCA.pem(certificate))]
        } catch {
            throw DaemonErrors.from(error)
        }
    }

    func issueCertificate(user: String, csr: String?) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        do {
            return ["certificate": .string(try IdentityCA.pem(await token.issueCertificate(user: user, csrPEM: csr)))]
        } catch {
            throw DaemonErrors.from(error)
        }
    }

    func unblockPIN(user: String, soPIN: String, newPIN: String) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        let verdict: PinVerdict
        do {
            verdict = try await token.unblockPIN(user: user, soPIN: soPIN, newPIN: newPIN)
        } catch {
            throw DaemonErrors.from(error)
        }
        switch verdict {
        case .accepted:
            logger.notice("PIN unblocked: \(user)")
            return [:]
        case .rejected(let left): throw VarlinkError("io.ukey.Admin.BadSoPin", ["retriesLeft": .int(left)])
        case .locked, .unknownUser: throw VarlinkError("io.ukey.Admin.TokenLocked")
        }
    }

    func setMode(_ newMode: EnforcementMode) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        do {
            try await token.setDaemonRecords(["mode": Array(newMode.rawValue.utf8)])
        } catch {
            throw DaemonErrors.from(error)
        }
        modeOverride = newMode
        logger.notice("mode set to \(newMode.rawValue)")
        return ["mode": .string(newMode.rawValue)]
    }
}
