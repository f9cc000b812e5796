import UkeyCore
import UkeyToken

/// `io.ukey.Token`: the root's cryptographic services.
enum Token {
    enum Info: ServiceMethod {
        static let name = "io.ukey.Token.Info"
        static let role: Role? = nil

        struct Reply: Sendable {
            let backend: String
            let serial: String
            /// The register banks' digests and the keys' signatures.
            let algorithms: [String]
            let roles: [String: String]
        }

        static func answer(_ request: NoParameters, in call: CallContext) async throws(ServiceError) -> Reply {
            let token = try call.services.tokens.require()
            let algorithms = token.banks.map(\.rawValue) + [token.keyAlgorithm.signatureAlgorithm]
            return Reply(
                backend: token.backendName,
                serial: await token.serial,
                algorithms: algorithms,
                roles: token.roleBackends
            )
        }
    }

    enum Certificate: ServiceMethod {
        static let name = "io.ukey.Token.Certificate"
        static let role: Role? = nil

        struct Request: Sendable {
            let name: String
        }

        struct Reply: Sendable {
            let pem: String
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let token = try call.services.tokens.require()
            do {
                return Reply(pem: try IdentityCA.pem(await token.certificate(named: request.name)))
            } catch {
                throw .unknownCertificate(request.name)
            }
        }
    }

    enum Random: ServiceMethod {
        static let name = "io.ukey.Token.Random"
        static let role: Role? = nil
        static let range = 1...1024

        struct Request: Sendable {
            let bytes: Int
        }

        struct Reply: Sendable {
            let data: [UInt8]
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let token = try call.services.tokens.require()
            guard range.contains(request.bytes) else { throw .invalidParameter("bytes") }
            do {
                return Reply(data: try await token.random(count: request.bytes))
            } catch {
                throw ServiceError(error)
            }
        }
    }

    /// A user's key signs only for that user's session, presented by the uid that logged in; the
    /// token's own keys never sign caller data.
    enum Sign: ServiceMethod {
        static let name = "io.ukey.Token.Sign"
        static let role: Role? = .user

        struct Request: Sendable {
            let key: String
            let digest: [UInt8]
            let session: String?
        }

        struct Reply: Sendable {
            let signature: [UInt8]
            /// "ecdsa-p256-sha256", or "sm2-sm3" (with the token's SM2 ID) on an SM2 token.
            let algorithm: String
            let context = SigningContext.tokenSign
        }

        static func answer(_ request: Request, in call: CallContext) async throws(ServiceError) -> Reply {
            let token = try call.services.tokens.require()
            if TokenKey(rawValue: request.key) != nil || request.key == "policy-signer" {
                throw .restrictedKey(request.key)
            }
            guard let id = request.session, let open = call.services.sessions.lookup(id, for: call.caller),
                open.user == request.key
            else {
                throw .sessionRequired
            }
            guard request.digest.count == 32 else { throw .invalidParameter("digest") }
            do {
                let signature = try await token.sign(asUser: request.key, digest: request.digest)
                return Reply(signature: signature, algorithm: token.keyAlgorithm.signatureAlgorithm)
            } catch {
                throw ServiceError(error)
            }
        }
    }
}
