import Testing
import UkeyAPI
import UkeyClient
import UkeyVarlink

/// The API's typed calls against a real ukeyd: what every client (ukeyctl, the gates, the
/// guard, the bench) now does, with no JSON of its own.
@Suite("ukeyd: typed calls through the shared API")
struct TypedClientTests {
    @Test("a typed Measure, Chain and EntityState agree; errors come back as the case ukeyd threw")
    func typedCalls() throws {
        let f = try DaemonFixture()
        let connection = try f.daemon.connect()
        let kernel = try f.expected("vmm", "kernel")
        let measured = try connection.call(
            Boot.Measure.self,
            .init(entity: "vmm", component: "kernel", digest: kernel)
        )
        #expect(measured.match && measured.digest == kernel && measured.register == 8 && !measured.cached)

        let chain = try connection.call(Boot.Chain.self)
        let vmm = try #require(chain.entities.first { $0.name == "vmm" })
        #expect(vmm.measured["kernel"] == kernel)
        #expect(try connection.call(Boot.EntityState.self, .init(name: "vmm")).entity == vmm)

        #expect(throws: APIError.unknownEntity("nope")) {
            try connection.call(Boot.EntityState.self, .init(name: "nope"))
        }
        #expect(throws: APIError.unknownComponent(entity: "vmm", component: "nope")) {
            try connection.call(Boot.Measure.self, .init(entity: "vmm", component: "nope", digest: kernel))
        }
        // What the typed request may not hold, ukeyd refuses naming the field.
        #expect(throws: APIError.invalidParameter("name")) {
            try connection.call(Boot.EntityState.self, .init(name: String(repeating: "x", count: 65)))
        }
        #expect(throws: APIError.invalidParameter("nonce")) {
            try connection.call(Boot.Quote.self, .init(nonce: []))
        }
    }

    @Test("every error of the table reads back into its own case")
    func errorTableRoundTrip() {
        let errors: [APIError] = [
            .invalidParameter("x"), .permissionDenied, .interfaceNotFound("i"), .methodNotFound("m"),
            .auditUnavailable(reason: "r"), .internalError, .notInitialized, .alreadyInitialized,
            .invalidArgument(reason: "r"), .policyRejected(reason: "r"), .badSOPIN(retriesLeft: 2), .tokenLocked,
            .noPolicy, .unknownEntity("e"), .unknownComponent(entity: "e", component: "c"),
            .cannotHash(path: "/p", reason: "r"), .journalFull(limit: 3, reason: "r"),
            .stateNotAccepted(entity: "e", reason: "r"), .badPIN(retriesLeft: 1), .pinLocked, .unknownUser,
            .loginBusy(reason: "r"), .unknownCertificate("n"), .restrictedKey("k"), .sessionRequired,
            .tokenUnavailable(reason: "r"), .other(name: "io.ukey.ProtocolError", parameters: ["reason": "r"]),
        ]
        for error in errors {
            #expect(APIError(name: error.name, parameters: error.parameters) == error)
        }
        // A reply the table would not have written stays as it was sent.
        #expect(
            APIError(name: "io.ukey.Auth.BadPin", parameters: [:])
                == .other(name: "io.ukey.Auth.BadPin", parameters: [:])
        )
    }
}
