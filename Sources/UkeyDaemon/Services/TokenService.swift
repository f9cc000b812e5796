import Foundation
import UkeyCore
import UkeyToken
import UkeyVarlink

/// `io.ukey.Token`: the root's cryptographic services.
extension DaemonCore {
    func tokenInfo() async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        let backend = token.backendName
        return [
            "backend": .string(backend),
            "serial": .string(await token.serial),
            "algorithms": ["sha256", "ecdsa-p256-sha256"],
            "roles": .object(token.roleBackends.mapValues(JSONValue.string)),
        ]
    }

    func certificate(name: String) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        do {
            return ["pem": .string(try IdentityCA.pem(await token.certificate(named: name)))]
        } catch {
            throw VarlinkError("io.ukey.Token.UnknownCertificate", ["name": .string(name)])
        }
    }

    func random(count: Int) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        guard (1...1024).contains(count) else { throw .invalidParameter("bytes") }
        do {
            return ["data": .string(try await token.random(count: count).base64)]
        } catch {
            throw DaemonErrors.from(error)
        }
    }

    /// A user's key signs only for that user's session; the token's own keys never sign caller data.
    func sign(key: String, digest: [UInt8], session: String?) async throws(VarlinkError) -> [String: JSONValue] {
        let token = try requireToken()
        if TokenKey(rawValue: key) != nil || key == "policy-signer" {
            throw VarlinkError("io.ukey.Token.RestrictedKey", ["key": .string(key)])
        }
        guard let session, let open = sessions.lookup(session, now: clock()), open.user == key else {
            throw VarlinkError("io.ukey.Token.SessionRequired")
        }
        guard digest.count == 32 else { throw .invalidParameter("digest") }
        do {
            let signature = try await token.sign(asUser: key, digest: digest)
            return ["signature": .string(signature.base64), "algorithm": "ecdsa-p256-sha256", "context": .string(SigningContext.tokenSign.base64)]
        } catch {
            throw DaemonErrors.from(error)
        }
    }
}
