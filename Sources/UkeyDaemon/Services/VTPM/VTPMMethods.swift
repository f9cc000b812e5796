import Foundation
import UkeyAPI
import UkeyCore
import UkeyToken
import X509

extension VTPM.Start: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        guard let loaded = await call.services.policy.loaded else { throw .noPolicy }
        guard let declaration = loaded.policy.entities.first(where: { $0.name == request.entity }) else {
            throw .unknownEntity(request.entity)
        }
        guard declaration.vtpm else {
            throw VTPM.refused(
                request.entity,
                "the policy gives \(request.entity) no vTPM (vtpm: true on its entity; ukeyctl vm enroll-vtpm)"
            )
        }
        if let refusal = await call.services.boot.vtpmRefusal(for: request.entity) {
            throw VTPM.refused(request.entity, refusal)
        }
        do {
            let started = try await call.services.vtpm.start(request.entity, token: token)
            return Reply(
                socket: started.socket,
                created: started.created,
                setupMilliseconds: started.setupMilliseconds,
                startMilliseconds: started.startMilliseconds
            )
        } catch {
            throw VTPM.refused(request.entity, error.description)
        }
    }
}

extension VTPM.Certify: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        let key: VTPMEndorsementKey
        do {
            key = try VTPMEndorsementKey(parsing: request.ek)
        } catch {
            throw .invalidArgument(reason: error.reason)
        }
        let certificateRequest = VTPMCertificateRequest(
            kind: request.kind == "ek" ? .endorsement : .platform,
            vm: request.entity,
            endorsementKey: key,
            tpmManufacturer: request.tpmManufacturer,
            tpmModel: request.tpmModel,
            tpmVersion: request.tpmVersion
        )
        if let problem = certificateRequest.problem { throw .invalidArgument(reason: problem) }
        do {
            return Reply(
                certificate: try await call.services.vtpm.certify(
                    certificateRequest,
                    ticket: request.ticket,
                    token: token
                )
            )
        } catch {
            throw VTPM.refused(request.entity, error.description)
        }
    }
}

extension VTPM.Certificate: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        func pem(_ der: [UInt8]) throws(APIError) -> String {
            do {
                return try IdentityCA.pem(try IdentityCA.certificate(der: der))
            } catch {
                throw APIError(error)
            }
        }
        guard let endorsement = await token.daemonRecord(VTPMService.certificateRecord(request.entity, .endorsement))
        else {
            throw VTPM.refused(
                request.entity,
                "no vTPM EK certificate was issued for \(request.entity) (its vTPM has not been made yet)"
            )
        }
        let platform = await token.daemonRecord(VTPMService.certificateRecord(request.entity, .platform))
        let ecc = await token.daemonRecord(VTPMService.certificateRecord(request.entity, .endorsement, ecc: true))
        func named(_ key: TokenKey) async throws(APIError) -> String {
            let certificate: TokenCertificate
            do {
                certificate = try await token.certificate(named: key.rawValue)
            } catch {
                throw APIError(error)
            }
            guard case .x509(let x509) = certificate else { throw .unknownCertificate(key.rawValue) }
            do {
                return try IdentityCA.pem(x509)
            } catch {
                throw APIError(error)
            }
        }
        return Reply(
            endorsement: try pem(endorsement),
            endorsementECC: try ecc.map { (der) throws(APIError) in try pem(der) },
            platform: try platform.map { (der) throws(APIError) in try pem(der) },
            authority: try await named(.vtpmCA),
            root: try await named(.rootCA)
        )
    }
}

extension BootService {
    /// Why `vm`'s vTPM may not start now, or nil: the VM must be trusted in this start (every
    /// component measured and matching, its parents trusted), and nothing measured under it
    /// untrusted (its kernel, its loader). In audit mode too: a vTPM's secrets go to a trusted
    /// start only, whatever the hypervisor is told about loading.
    func vtpmRefusal(for vm: String) -> String? {
        guard let chain, let loaded = policy.loaded else { return "no policy is in force" }
        guard let status = chain.status(of: vm) else { return "\(vm) is not in the policy" }
        guard status.state == .trusted else {
            let why = status.reason.map { " (\($0.rawValue))" } ?? " (not every component measured yet)"
            return "\(vm) is \(status.state.rawValue)\(why) in this start: its vTPM state key stays sealed"
        }
        var parents: [String: String] = [:]
        for entity in loaded.expected.entities { parents[entity.name] = entity.parent }
        for entity in loaded.expected.entities where entity.name != vm {
            var ancestor = entity.parent
            var steps = 0
            while ancestor != vm, ancestor != Entity.rootName, let next = parents[ancestor], steps < 1000 {
                ancestor = next
                steps += 1
            }
            guard ancestor == vm, let below = chain.status(of: entity.name), below.state == .untrusted else { continue }
            return
                "\(entity.name), which \(vm) loads, is untrusted (\(below.reason?.rawValue ?? "?")) in this start: its vTPM state key stays sealed"
        }
        return nil
    }
}
