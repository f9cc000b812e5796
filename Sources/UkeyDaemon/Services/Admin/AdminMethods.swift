import Crypto
import Foundation
import UkeyCodec
import UkeyCore
import UkeyPolicy
import UkeyToken
import X509

/// `io.ukey.Admin`: provisioning (admin role).
/// Creates the token once: root CA, attestation and audit keys, SO PIN, policy signer.
extension Admin.Initialize: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let services = call.services
        let tokens = services.tokens
        let logger = services.logger
        guard tokens.current == nil, !tokens.provider.isInitialized() else { throw .alreadyInitialized }
        let signer: PolicySigner
        do {
            signer = try PolicySigner(pemEncoded: request.policySigner)
        } catch {
            throw .invalidArgument(
                reason:
                    "policySigner: \(error.description) (a PEM certificate whose key is ECDSA P-256, or SM2 signed SM2-with-SM3)"
            )
        }
        guard tokens.allowDemoKeys || !DemoKeys.isDemoPolicySigner(signer) else {
            throw .invalidArgument(reason: DemoKeys.refusal)
        }
        let bootID = await services.boot.bootID
        let created: any TrustedRoot
        do {
            created = try await tokens.provider.initialize(
                soPIN: request.soPIN,
                policySigner: signer,
                bootID: bootID
            )
        } catch {
            throw APIError(error)
        }
        tokens.current = created
        // A new token has a new audit key: an earlier log is kept aside, and a new one begins.
        let auditPath = services.auditPath
        if FileManager.default.fileExists(atPath: auditPath) {
            let aside = auditPath + ".before-" + ISO8601DateFormatter().string(from: services.sessions.clock())
            try? FileManager.default.moveItem(atPath: auditPath, toPath: aside)
            logger.notice("the earlier audit log was moved to \(aside)")
        }
        do {
            try await services.audit.open(
                token: created,
                path: auditPath,
                stateDirectory: services.paths.stateDirectory,
                bootID: bootID,
                logger: logger
            )
        } catch {
            logger.error("cannot open the audit log: \(error)")
            throw .internalError
        }
        let serial = await created.serial
        logger.notice("token initialised (\(created.backendName), serial \(serial))")
        do {
            return Reply(rootCertificate: try IdentityCA.pem(await created.certificate(named: "root-ca")))
        } catch {
            throw APIError(error)
        }
    }
}

extension Admin.Status: ServedMethod {

    static func answer(_ request: Empty, in call: CallContext) async throws(APIError) -> Reply {
        let services = call.services
        let token = services.tokens.current
        let (loaded, mode) = await (services.policy.loaded, services.policy.mode)
        let (bootID, measurements, batches) = await (
            services.boot.bootID, services.boot.record.measurements.count, services.boot.queue.batches
        )
        return Reply(
            initialized: token != nil,
            backend: services.tokens.provider.backendName,
            roles: token?.roleBackendsForAPI,
            policyVersion: loaded?.version,
            mode: mode.rawValue,
            bootID: bootID,
            users: await token?.userNames().count ?? 0,
            entities: loaded?.expected.entities.count ?? 0,
            measurements: measurements,
            measurementBatches: batches,
            guards: services.guards.snapshot().map(GuardRegistry.apiGuard)
        )
    }
}

/// A signed policy given in the call, or without one the newest of the policy directory.
extension Admin.LoadPolicy: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        guard let text = request.policy, let signature = request.signature?.bytes else {
            return Reply(version: try await call.services.reloadPolicyDirectory(recorded: true))
        }
        return Reply(
            version: try await call.services.adopt(
                text: Array(text.utf8),
                signature: signature,
                token: token,
                source: "the call"
            ).version
        )
    }
}

extension Admin.AddUser: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        do {
            let certificate = try await token.addUserReturningCertificate(
                request.user,
                pin: request.pin,
                roles: request.roles ?? []
            )
            call.services.logger.notice("user added: \(request.user)")
            return Reply(certificate: try IdentityCA.pem(certificate))
        } catch {
            throw APIError(error)
        }
    }
}

/// A new identity certificate: for a CSR when the key lives on a smart card, else for the
/// user's key in the token.
extension Admin.IssueCertificate: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        do {
            return Reply(
                certificate: try IdentityCA.pem(
                    await token.issueCertificate(user: request.user, csrPEM: request.csr)
                )
            )
        } catch {
            throw APIError(error)
        }
    }
}

extension Admin.UnblockPin: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Empty {
        let token = try call.services.tokens.require()
        let verdict: PinVerdict
        do {
            verdict = try await token.users.unblockPIN(user: request.user, soPIN: request.soPIN, newPIN: request.newPIN)
        } catch {
            throw APIError(error)
        }
        switch verdict {
        case .accepted:
            call.services.logger.notice("PIN unblocked: \(request.user)")
            return Empty()
        case .rejected(let left): throw .badSOPIN(retriesLeft: left)
        case .locked, .unknownUser: throw .tokenLocked
        }
    }
}

extension Admin.SetMode: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        guard let mode = EnforcementMode(rawValue: request.mode) else { throw .invalidParameter("mode") }
        try await call.services.policy.setMode(mode, token: token)
        await call.services.boot.publishRuntime()
        return Reply(mode: mode.rawValue)
    }
}

extension GuardRegistry {
    /// A guard as `Admin.Status` lists it.
    static func apiGuard(_ guarded: (key: Key, entry: Entry)) -> Admin.Status.Guard {
        Admin.Status.Guard(
            vm: guarded.key.vm,
            via: guarded.key.via.rawValue,
            pid: guarded.key.pid == 0 ? nil : Int(guarded.key.pid),
            state: guarded.entry.state.rawValue,
            since: ISO8601DateFormatter().string(from: guarded.entry.since),
            reason: guarded.entry.reason
        )
    }
}
