import Crypto
import Foundation
import UkeyCore
import UkeyTesting
import UkeyToken
import X509

/// A fresh soft token per test, in its own private directory, with a fast KDF (the kill -9 test
/// uses the real one).
struct TokenFixture {
    static let soPIN = "so-secret-42"
    let parent: TemporaryDirectory
    let configuration: SoftToken.Configuration
    let signerKey: P256.Signing.PrivateKey

    init(kdf: PinRecord.KDF = .fastForTests) throws {
        parent = try TemporaryDirectory("ukey-token")
        var configuration = SoftToken.Configuration(stateDirectory: parent.file("state"))
        configuration.kdf = kdf
        self.configuration = configuration
        signerKey = P256.Signing.PrivateKey()
    }

    func initialize() async throws -> SoftToken {
        let signer = try IdentityCA.makeRoot(key: signerKey, commonName: "test policy signer", now: Date())
        return try await SoftToken.initialize(configuration, soPIN: Self.soPIN, policySigner: signer, bootID: "boot-1")
    }

    func reopen() throws -> SoftToken {
        try SoftToken.open(configuration, bootID: "boot-1")
    }
}

/// The openssl CLI, the independent judge of every signature and certificate the token makes.
enum OpenSSL {
    static let tool = ExternalTool("openssl")

    @discardableResult
    static func run(_ arguments: [String]) throws -> ExternalTool.Result {
        try tool.run(arguments)
    }

    /// Writes the public key of a PEM certificate to `path`.
    static func extractPublicKey(certificate: String, to path: String) throws {
        let result = try run(["x509", "-in", certificate, "-pubkey", "-noout", "-out", path])
        precondition(result.status == 0, result.stderr)
    }
}
