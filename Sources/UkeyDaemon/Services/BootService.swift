import Crypto
import Foundation
import UkeyCore
import UkeyPolicy
import UkeyToken
import UkeyVarlink

/// `io.ukey.Boot`: measure, then decide (architecture.md section 1).
extension DaemonCore {
    /// The file the policy names for a component, when the hypervisor sends neither digest nor path.
    func fileHint(entity: String, component: String) throws(VarlinkError) -> (path: String, algorithm: HashAlgorithm) {
        guard let loaded else { throw DaemonErrors.noPolicy() }
        guard let expected = loaded.expected.entity(named: entity) else {
            throw VarlinkError("io.ukey.Boot.UnknownEntity", ["entity": .string(entity)])
        }
        guard let component = expected.component(named: component) else {
            throw VarlinkError("io.ukey.Boot.UnknownComponent", ["entity": .string(entity), "component": .string(component)])
        }
        guard let file = loaded.file(entity: entity, component: component.name) else {
            throw VarlinkError.invalidParameter("path")
        }
        return (file, component.expected.algorithm)
    }

    /// The algorithm the policy expects for a component (sha256 when unknown).
    func expectedAlgorithm(entity: String, component: String) -> HashAlgorithm {
        loaded?.expected.entity(named: entity)?.component(named: component)?.expected.algorithm ?? .sha256
    }

    /// Starting a user VM needs a logged-in user whose policy entry names that VM.
    func userVMRefusal(entity: String, session: String?) -> String? {
        guard let session, let open = sessions.lookup(session, now: clock()) else { return "authentication-required" }
        guard let user = loaded?.user(open.user), user.vms.contains(where: { $0.name == entity }) else { return "user-not-allowed" }
        return nil
    }

    func chainDescription() throws(VarlinkError) -> [String: JSONValue] {
        _ = try requireToken()
        var entities: [JSONValue] = []
        if let loaded, let chain {
            for entity in loaded.expected.entities {
                let status = chain.status(of: entity.name) ?? EntityStatus()
                entities.append([
                    "name": .string(entity.name),
                    "parent": .string(entity.parent),
                    "kind": .string(entity.kind.rawValue),
                    "state": .string(status.state.rawValue),
                    "reason": status.reason.map { .string($0.rawValue) } ?? .null,
                    "register": .int(entity.register),
                    "measured": .object(status.measured.mapValues { .string($0.description) }),
                    "components": .array(entity.components.map { .string($0.name) }),
                ])
            }
        }
        return ["bootId": .string(bootID), "mode": .string(mode.rawValue), "entities": .array(entities)]
    }

    func quote(nonce: [UInt8], registers: [Int]?) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        let selection = registers ?? loaded?.registers ?? [8]
        let logDigest = eventLogDigest ?? UkeyCore.Digest.of(eventLog.serialized())
        eventLogDigest = logDigest
        do {
            let signed = try await token.quote(nonce: nonce, registers: selection, eventLog: logDigest)
            if tokenKeysCAPEM == nil {
                tokenKeysCAPEM = try IdentityCA.pem(await token.certificate(named: TokenKey.tokenKeysCA.rawValue))
            }
            return [
                "quote": .string(signed.quote.base64),
                "signature": .string(signed.signature.base64),
                "certificate": .string(signed.certificatePEM),
                "chain": .string(tokenKeysCAPEM ?? ""),
                "attestationKey": .string(signed.attestationKeyPEM),
                "format": .string(signed.format),
            ]
        } catch {
            if error.code == .invalidArgument { throw .invalidParameter(error.reason.contains("nonce") ? "nonce" : "registers") }
            throw DaemonErrors.from(error)
        }
    }

    func eventLogData() throws(VarlinkError) -> [String: JSONValue] {
        _ = try requireToken()
        return ["format": "tcg-pfp", "data": .string(eventLog.serialized().base64)]
    }

    /// A VM stopped: it (and what it loaded) is measured afresh on its next start, unless it was
    /// found untrusted in this boot, which a stop does not undo. Written to the journal first, so
    /// a restarted ukeyd replays it in its place among the measurements.
    func release(entity: String) async throws(VarlinkError) -> [String: JSONValue] {
        _ = try requireToken()
        guard loaded != nil, chain != nil else { throw DaemonErrors.noPolicy() }
        guard entity != Entity.rootName, loaded?.expected.entity(named: entity) != nil else {
            throw VarlinkError("io.ukey.Boot.UnknownEntity", ["entity": .string(entity)])
        }
        let outcome: Result<BootChain.Release, VarlinkError> = await serialized { () async -> Result<BootChain.Release, VarlinkError> in
            guard var updated = chain else { return .failure(DaemonErrors.noPolicy()) }
            let result: BootChain.Release
            do {
                result = try updated.release(entity: entity)
            } catch {
                return .failure(VarlinkError("io.ukey.Boot.UnknownEntity", ["entity": .string(entity)]))
            }
            if case .released = result {
                do {
                    try journal.appendRelease(entity: entity)
                } catch {
                    logger.error("cannot record the release of \(entity): \(error)")
                    return .failure(DaemonErrors.internalError())
                }
                releases.append((measurements.count, entity))
                chain = updated
            }
            return .success(result)
        }
        switch try outcome.get() {
        case .released(let entities):
            logger.notice("released \(entities.joined(separator: ", ")): measured afresh on the next start")
            return ["released": .array(entities.map { .string($0) }), "state": "pending"]
        case .stillUntrusted(let reason):
            return ["released": [], "state": "untrusted", "reason": reason.map { .string($0.rawValue) } ?? .null]
        }
    }

    func resetBoot() async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        let newBoot = UUID().uuidString.lowercased()
        do {
            try await serialized { () async throws in
                if token.registersPersist {
                    // PCRs reset only with the host: the earlier measurements stay in the log.
                    try journal.appendReset(boot: newBoot)
                    earlier += measurements
                } else {
                    try journal.start(hostBoot: hostBoot, boot: newBoot)
                    earlier = []
                }
                _ = try await token.reset(bootID: newBoot)
                bootID = newBoot
                measurements = []
                releases = []
                rebuildChain()
            }
        } catch {
            logger.error("reset failed: \(error)")
            throw DaemonErrors.internalError()
        }
        logger.notice("boot reset by an administrator: new boot \(newBoot)")
        return ["bootId": .string(newBoot)]
    }
}
