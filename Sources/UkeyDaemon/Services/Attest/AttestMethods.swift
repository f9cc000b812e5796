import Crypto
import UkeyCodec
import UkeyAPI
import UkeyToken

extension Attest.Identity: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        _ = try AttestationService.role(token)
        do {
            let (endorsement, key) = try await call.services.attestation.identity(token, renew: request.renew == true)
            // The TPM name: the name algorithm (SHA-256) then the hash of the TPMT_PUBLIC.
            let name = [0x00, 0x0B] + Array(SHA256.hash(data: key.publicArea.dropFirst(2)))
            return Reply(
                algorithm: endorsement.algorithm,
                ek: endorsement.publicArea,
                ekCertificate: endorsement.certificate,
                ak: key.publicArea,
                akName: Hex.encode(name)
            )
        } catch {
            throw APIError(error)
        }
    }
}

extension Attest.ActivateCredential: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        let role = try AttestationService.role(token)
        let (algorithm, key) = try await call.services.attestation.key(token)
        do {
            return Reply(
                secret: try await role.activateCredential(
                    key: key,
                    algorithm: algorithm,
                    credential: request.credential.bytes,
                    encryptedSecret: request.encryptedSecret.bytes
                )
            )
        } catch {
            throw APIError(error)
        }
    }
}

extension Attest.Quote: ServedMethod {
    static let bankIDs: [String: UInt16] = ["sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C, "sha512": 0x000D]

    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        let role = try AttestationService.role(token)
        let (algorithm, key) = try await call.services.attestation.key(token)
        guard let bank = bankIDs[request.bank] else { throw .invalidParameter("bank") }
        do {
            let quote = try await role.quote(
                key: key,
                algorithm: algorithm,
                nonce: request.nonce.bytes,
                pcrs: request.pcrs,
                bank: bank
            )
            return Reply(attest: quote.attest, signature: quote.signature, pcrValues: quote.pcrValues)
        } catch {
            throw APIError(error)
        }
    }
}

extension Attest.BindKey: ServedMethod {
    static func answer(_ request: Request, in call: CallContext) async throws(APIError) -> Reply {
        let token = try call.services.tokens.require()
        let role = try AttestationService.role(token)
        guard let digest = Hex.decode(request.digest) else { throw .invalidParameter("digest") }
        // PCR 16 is reset here: a policy that measures into it would lose its measurements.
        if let entity = await call.services.policy.loaded?.expected.entities.first(where: { $0.register == 16 }) {
            throw .invalidArgument(
                reason:
                    "the policy in force measures \(entity.name) into register 16, which a Keylime agent resets to bind its key: give \(entity.name) another register (14 or 15)"
            )
        }
        do {
            try await role.bindDebugPCR(digest)
            return Empty()
        } catch {
            throw APIError(error)
        }
    }
}
