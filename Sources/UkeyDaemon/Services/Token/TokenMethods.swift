import UkeyCore
import UkeyToken

/// `io.ukey.Token`: the root's cryptographic services.
extension Token.Info: ServedMethod {

    static func answer(_ request: Empty, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        let algorithms = token.registers.banks.map(\.rawValue) + [token.keyAlgorithm.signatureAlgorithm]
        return Reply(
            backend: token.backendName,
            serial: await token.serial,
            algorithms: algorithms,
            roles: token.roleBackendsForAPI
        )
    }
}

extension Token.Certificate: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        do {
            return Reply(pem: try IdentityCA.pem(await token.certificate(named: request.name)))
        } catch {
            throw .unknownCertificate(request.name)
        }
    }
}

extension Token.Random: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        do {
            return Reply(data: try await token.keys.random(count: request.bytes))
        } catch {
            throw APIError(error)
        }
    }
}

/// A user's key signs only for that user's session, presented by the uid that logged in; the
/// token's own keys never sign caller data.
extension Token.Sign: ServedMethod {

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        if TokenKey(rawValue: request.key) != nil || request.key == "policy-signer" {
            throw .restrictedKey(request.key)
        }
        guard let id = request.session, let open = call.services.sessions.lookup(id, for: call.caller),
            open.user == request.key
        else {
            throw .sessionRequired
        }
        guard request.digest.bytes.count == 32 else { throw .invalidParameter("digest") }
        do {
            let signature = try await token.keys.sign(asUser: request.key, digest: request.digest.bytes)
            return Reply(
                signature: signature,
                algorithm: token.keyAlgorithm.signatureAlgorithm,
                context: SigningContext.tokenSign
            )
        } catch {
            throw APIError(error)
        }
    }
}

extension TrustedRoot {
    /// Which backend serves each role, as `Token.Info` and `Admin.Status` answer it.
    var roleBackendsForAPI: Token.Roles {
        let names = roleBackends
        return Token.Roles(
            registers: names["registers"] ?? backendName,
            keys: names["keys"] ?? backendName,
            users: names["users"] ?? backendName,
            store: names["store"] ?? backendName
        )
    }
}
