import Crypto
import Foundation
import UkeyCodec
import UkeyCore
import UkeyPolicy
import UkeyToken
import X509

/// `io.ukey.Admin`: provisioning (admin role).
enum Admin {
    /// Creates the token once: root CA, attestation and audit keys, SO PIN, policy signer.
    enum Initialize: ServiceMethod {
        static let name = "io.ukey.Admin.Initialize"
        static let role: Role? = .admin

        struct Request: Sendable {
            let soPIN: String
            let policySignerPEM: String
        }

        struct Reply: Sendable {
            let rootCertificate: String
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let services = call.services
            let tokens = services.tokens
            let logger = services.logger
            guard tokens.current == nil, !tokens.provider.isInitialized() else { throw .alreadyInitialized }
            let signer: PolicySigner
            do {
                signer = try PolicySigner(pemEncoded: request.policySignerPEM)
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
                throw ServiceError(error)
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
                throw ServiceError(error)
            }
        }
    }

    enum Status: ServiceMethod {
        static let name = "io.ukey.Admin.Status"
        static let role: Role? = .admin

        struct Reply: Sendable {
            let initialized: Bool
            let backend: String
            let roles: [String: String]?
            let policyVersion: Int?
            let mode: String
            let bootID: String
            let users: Int
            let entities: Int
            let measurements: Int
            let measurementBatches: Int
            /// The exec guards heard from since ukeyd started, with each one's state.
            let guards: [(key: GuardRegistry.Key, entry: GuardRegistry.Entry)]
        }

        static func answer(_ request: NoParameters, in call: CallContext) async throws(ServiceError) -> Reply {
            let services = call.services
            let token = services.tokens.current
            let (loaded, mode) = await (services.policy.loaded, services.policy.mode)
            let (bootID, measurements, batches) = await (
                services.boot.bootID, services.boot.record.measurements.count, services.boot.queue.batches
            )
            return Reply(
                initialized: token != nil,
                backend: services.tokens.provider.backendName,
                roles: token?.roleBackends,
                policyVersion: loaded?.version,
                mode: mode.rawValue,
                bootID: bootID,
                users: await token?.userNames().count ?? 0,
                entities: loaded?.expected.entities.count ?? 0,
                measurements: measurements,
                measurementBatches: batches,
                guards: services.guards.snapshot()
            )
        }
    }

    /// A signed policy given in the call, or without one the newest of the policy directory.
    enum LoadPolicy: ServiceMethod {
        static let name = "io.ukey.Admin.LoadPolicy"
        static let role: Role? = .admin

        struct Request: Sendable {
            /// nil: the policy directory's newest.
            let signed: (text: [UInt8], signature: [UInt8])?
        }

        struct Reply: Sendable {
            let version: Int?
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let token = try call.services.tokens.require()
            guard let (text, signature) = request.signed else {
                return Reply(version: try await call.services.reloadPolicyDirectory(recorded: true))
            }
            return Reply(
                version: try await call.services.adopt(
                    text: text,
                    signature: signature,
                    token: token,
                    source: "the call"
                ).version
            )
        }
    }

    enum AddUser: ServiceMethod {
        static let name = "io.ukey.Admin.AddUser"
        static let role: Role? = .admin

        struct Request: Sendable {
            let user: String
            let pin: String
            let roles: [String]
        }

        struct Reply: Sendable {
            let certificate: String
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let token = try call.services.tokens.require()
            do {
                let certificate = try await token.addUserReturningCertificate(
                    request.user,
                    pin: request.pin,
                    roles: request.roles
                )
                call.services.logger.notice("user added: \(request.user)")
                return Reply(certificate: try IdentityCA.pem(certificate))
            } catch {
                throw ServiceError(error)
            }
        }
    }

    /// A new identity certificate: for a CSR when the key lives on a smart card, else for the
    /// user's key in the token.
    enum IssueCertificate: ServiceMethod {
        static let name = "io.ukey.Admin.IssueCertificate"
        static let role: Role? = .admin

        struct Request: Sendable {
            let user: String
            let csr: String?
        }

        struct Reply: Sendable {
            let certificate: String
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let token = try call.services.tokens.require()
            do {
                return Reply(
                    certificate: try IdentityCA.pem(
                        await token.issueCertificate(user: request.user, csrPEM: request.csr)
                    )
                )
            } catch {
                throw ServiceError(error)
            }
        }
    }

    enum UnblockPin: ServiceMethod {
        static let name = "io.ukey.Admin.UnblockPin"
        static let role: Role? = .admin

        struct Request: Sendable {
            let user: String
            let soPIN: String
            let newPIN: String
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> EmptyReply {
            let token = try call.services.tokens.require()
            let verdict: PinVerdict
            do {
                verdict = try await token.unblockPIN(user: request.user, soPIN: request.soPIN, newPIN: request.newPIN)
            } catch {
                throw ServiceError(error)
            }
            switch verdict {
            case .accepted:
                call.services.logger.notice("PIN unblocked: \(request.user)")
                return EmptyReply()
            case .rejected(let left): throw .badSOPIN(retriesLeft: left)
            case .locked, .unknownUser: throw .tokenLocked
            }
        }
    }

    enum SetMode: ServiceMethod {
        static let name = "io.ukey.Admin.SetMode"
        static let role: Role? = .admin

        struct Request: Sendable {
            let mode: EnforcementMode
        }

        struct Reply: Sendable {
            let mode: EnforcementMode
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let token = try call.services.tokens.require()
            try await call.services.policy.setMode(request.mode, token: token)
            await call.services.boot.publishRuntime()
            return Reply(mode: request.mode)
        }
    }
}
