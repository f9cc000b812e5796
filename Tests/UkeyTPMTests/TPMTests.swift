import Crypto
import Foundation
import Testing
import UkeyStore
import UkeyTPM
import UkeyTesting

/// The token secret these tests' objects are made with (a token's comes from its state directory).
let tpmTestSecret = TPMObjectSecret.random()

@Suite(
    "TPM through tpm2-tss, against swtpm",
    .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)")
)
struct TPMTests {
    static let pcrread = ExternalTool("tpm2_pcrread")

    @Test("an extend lands in the PCR: our read and the real tpm2_pcrread agree with SHA-256(old || digest)")
    func extendAndRead() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let measurement = Array(SHA256.hash(data: Array("a kernel".utf8)))
        // In a function of its own, so our connection is closed before tpm2-tools opens its own
        // (swtpm serves one client at a time).
        func extendOnce() async throws -> (before: [UInt8], after: [UInt8]) {
            let tpm = try TPM(tcti: swtpm.tcti, secret: tpmTestSecret)
            let before = try await tpm.read(pcr: 16)
            try await tpm.extend(pcr: 16, sha256: measurement)
            return (before, try await tpm.read(pcr: 16))
        }
        let (before, after) = try await extendOnce()
        #expect(before == [UInt8](repeating: 0, count: 32))
        let expected = Array(SHA256.hash(data: before + measurement))
        #expect(after == expected)
        let tool = try Self.pcrread.run(["-T", swtpm.tcti, "sha256:16"])
        #expect(tool.status == 0, "\(tool.stderr)")
        #expect(
            tool.stdout.lowercased().contains(expected.map { String(format: "%02x", $0) }.joined()),
            "\(tool.stdout)"
        )
    }

    @Test("random bytes come from the TPM; bad requests and a TPM that is not there are clear errors")
    func randomAndErrors() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let tpm = try TPM(tcti: swtpm.tcti, secret: tpmTestSecret)
        let a = try await tpm.random(count: 100)
        let b = try await tpm.random(count: 100)
        #expect(a.count == 100 && b.count == 100 && a != b)
        await #expect(throws: TPMError.self) { try await tpm.extend(pcr: 24, sha256: [UInt8](repeating: 1, count: 32)) }
        await #expect(throws: TPMError.self) { try await tpm.extend(pcr: 16, sha256: [1, 2, 3]) }
        #expect { try TPM(tcti: "swtpm:path=\(swtpm.directory.file("nothing-here"))", secret: tpmTestSecret) } throws: {
            error in
            let text = "\(error)"
            return text.contains("opening the TPM") || text.contains("starting a session")
        }
    }
}

@Suite(
    "A TPM that goes away and comes back",
    .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)")
)
struct TPMReconnectTests {
    @Test(
        "the command in flight fails with a transport error; the next one connects again; the audit key is the same after the restart"
    )
    func reconnect() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let tpm = try TPM(tcti: swtpm.tcti, secret: tpmTestSecret)
        let key = try await tpm.auditKey()
        try await tpm.extend(pcr: 16, sha256: [UInt8](repeating: 7, count: 32))
        try swtpm.restart()
        var failures = 0
        var value: [UInt8]?
        for _ in 0..<3 where value == nil {
            do {
                value = try await tpm.read(pcr: 16)
            } catch {
                #expect(error.isTransport, "\(error)")
                failures += 1
            }
        }
        // No command was in flight at the restart, so the first may find the old connection
        // dead (one failure) or not yet noticed; `commandInFlight` pins down the exact case.
        #expect(failures <= 1, "one failure at most: the broken connection is dropped and the next command reconnects")
        #expect(value == [UInt8](repeating: 0, count: 32), "the restarted TPM's PCRs start again from zero")
        #expect(try await tpm.auditKey() == key, "primaries from a fixed template are the same keys after a restart")
        let signed = try await tpm.signWithAuditKey(sha256: Array(SHA256.hash(data: Array("checkpoint".utf8))))
        let publicKey = try P256.Signing.PublicKey(x963Representation: signed.publicKey)
        #expect(
            publicKey.isValidSignature(
                try P256.Signing.ECDSASignature(rawRepresentation: signed.signature),
                for: SHA256.hash(data: Array("checkpoint".utf8))
            )
        )
    }
}

extension TPMReconnectTests {
    @Test(
        "the TPM dies while a command waits for its answer: that very command fails with a transport error, and the next one reconnects and succeeds"
    )
    func commandInFlight() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let tpm = try TPM(tcti: swtpm.tcti, secret: tpmTestSecret)
        try await tpm.extend(pcr: 16, sha256: [UInt8](repeating: 7, count: 32))
        let extended = try await tpm.read(pcr: 16)
        #expect(extended != [UInt8](repeating: 0, count: 32))
        // Frozen, swtpm takes the command but never answers; then it dies and comes back.
        swtpm.pause()
        let inFlight = Task { try await tpm.read(pcr: 16) }
        try await Task.sleep(nanoseconds: 1_000_000_000)
        try swtpm.crashAndRestart()
        switch await inFlight.result {
        case .success(let value):
            Issue.record("the command in flight was answered (\(value)) by a TPM that died before answering it")
        case .failure(let error):
            #expect((error as? TPMError)?.isTransport == true, "\(error)")
        }
        // The very next command succeeds, on a new connection, against the restarted TPM.
        #expect(try await tpm.read(pcr: 16) == [UInt8](repeating: 0, count: 32))
    }
}

@Suite(
    "TPM quotes, checked by tpm2_checkquote",
    .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)")
)
struct TPMQuoteTests {
    static let checkquote = ExternalTool("tpm2_checkquote")

    @Test("a TPM2_Quote by the attestation key verifies with tpm2_checkquote and our nonce, and fails with another")
    func quote() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let nonce = (0..<16).map { _ in UInt8.random(in: 0...255) }
        func quoteOnce() async throws -> (TPMQuote, TPMQuote) {
            let tpm = try TPM(tcti: swtpm.tcti, secret: tpmTestSecret)
            try await tpm.extend(pcr: 16, sha256: Array(SHA256.hash(data: Array("vmm".utf8))))
            let first = try await tpm.quote(nonce: nonce, pcrs: [16])
            return (first, try await tpm.quote(nonce: nonce, pcrs: [16]))
        }
        let (quote, again) = try await quoteOnce()
        #expect(
            quote.attestationKey == again.attestationKey,
            "the attestation key is derived from a fixed template: the same each time"
        )
        let work = try TemporaryDirectory()
        let key = try P256.Signing.PublicKey(x963Representation: quote.attestationKey)
        try key.pemRepresentation.write(toFile: work.file("ak.pem"), atomically: true, encoding: .utf8)
        try Data(quote.attest).write(to: URL(fileURLWithPath: work.file("attest")))
        try Data(quote.signature).write(to: URL(fileURLWithPath: work.file("sig")))
        let hex = { (b: [UInt8]) in b.map { String(format: "%02x", $0) }.joined() }
        let good = try Self.checkquote.run([
            "-u", work.file("ak.pem"), "-m", work.file("attest"), "-s", work.file("sig"), "-g", "sha256", "-q",
            hex(nonce),
        ])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        let bad = try Self.checkquote.run([
            "-u", work.file("ak.pem"), "-m", work.file("attest"), "-s", work.file("sig"), "-g", "sha256", "-q",
            hex(nonce.reversed()),
        ])
        #expect(bad.status != 0)
    }
}

@Suite("The swtpm make test starts")
struct SharedSoftwareTPMTests {
    @Test(
        "make test's swtpm answers at UKEY_TEST_TCTI (required under CI=true)",
        .enabled(
            if: ExternalTool.inCI || ProcessInfo.processInfo.environment["UKEY_TEST_TCTI"] != nil,
            "UKEY_TEST_TCTI is not set: make test starts a swtpm and sets it"
        )
    )
    func shared() async throws {
        let tcti = try #require(
            ProcessInfo.processInfo.environment["UKEY_TEST_TCTI"],
            "scripts/test.sh did not start swtpm"
        )
        let tpm = try TPM(tcti: tcti, secret: tpmTestSecret)
        #expect(try await tpm.random(count: 32).count == 32)
    }
}

@Suite("TPM sealing", .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)"))
struct TPMSealTests {
    @Test(
        "a secret sealed to a TPM unseals on that TPM, and not on a fresh one (another machine); a damaged blob is a clear error"
    )
    func seal() async throws {
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let machine = try SoftwareTPM()
        let other = try SoftwareTPM()
        defer {
            machine.stop()
            other.stop()
        }
        func roundTrip() async throws -> ([UInt8], [UInt8]) {
            let tpm = try TPM(tcti: machine.tcti, secret: tpmTestSecret)
            let blob = try await tpm.seal(secret)
            return (blob, try await tpm.unseal(blob))
        }
        let (blob, unsealed) = try await roundTrip()
        #expect(unsealed == secret)
        #expect(!blob.contains(secret), "the blob must not carry the secret in the clear")
        func elsewhere() async throws -> [UInt8] { try await TPM(tcti: other.tcti, secret: tpmTestSecret).unseal(blob) }
        await #expect { try await elsewhere() } throws: { "\($0)".contains("was it sealed by this TPM?") }
        func damaged() async throws -> [UInt8] {
            try await TPM(tcti: machine.tcti, secret: tpmTestSecret).unseal(Array(blob.dropLast(5)))
        }
        await #expect { try await damaged() } throws: { "\($0)".contains("damaged") }
    }
}

extension Array where Element == UInt8 {
    func contains(_ other: [UInt8]) -> Bool {
        guard other.count <= count else { return false }
        return (0...(count - other.count)).contains { Array(self[$0..<($0 + other.count)]) == other }
    }
}

@Suite(
    "The sealed store with its key sealed to a TPM",
    .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)")
)
struct TPMStoreTests {
    @Test("the store opens on the same TPM and, copied to another machine, fails with a clear integrity error")
    func storeKeyOnTPM() throws {
        let machine = try SoftwareTPM()
        let other = try SoftwareTPM()
        defer {
            machine.stop()
            other.stop()
        }
        let state = try TemporaryDirectory()
        let directory = state.file("state")
        var store = try SealedStore.create(
            in: directory,
            protector: TPMStoreKeyProtector(tcti: machine.tcti, secret: tpmTestSecret),
            initial: ["greeting": Array("hello".utf8)]
        )
        try store.commit(["second": Array("record".utf8)])
        let reopened = try SealedStore.open(
            in: directory,
            protector: TPMStoreKeyProtector(tcti: machine.tcti, secret: tpmTestSecret)
        )
        #expect(reopened["greeting"] == Array("hello".utf8))
        #expect(reopened["second"] == Array("record".utf8))
        #expect {
            try SealedStore.open(
                in: directory,
                protector: TPMStoreKeyProtector(tcti: other.tcti, secret: tpmTestSecret)
            )
        } throws: { error in
            let text = "\(error)"
            return text.contains("integrity") && text.contains("does not unseal with tpm")
        }
        // A store sealed by the soft token's device key is not opened as a TPM one, or the other way round.
        #expect {
            try SealedStore.open(in: directory, protector: DeviceKeyProtector(stateDirectory: directory))
        } throws: { "\($0)".contains("sealed by 'tpm'") }
    }
}

/// Another user of the same TPM (root, or a member of `tss`): with tpm2-tools and the templates
/// ukey used before its objects carried the token's secret, it re-created ukey's attestation key
/// and CA keys, and moved ukey's NV counter. Now each is the token's alone.
@Suite(
    "ukey's TPM objects are the token's alone: another TPM user neither derives its keys, nor unseals its store key, nor moves its counter",
    .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)")
)
struct TPMOwnershipTests {
    static let createPrimary = ExternalTool("tpm2_createprimary")

    /// Runs a tpm2-tools command against `tcti`.
    static func tool(_ name: String, _ arguments: [String], tcti: String) throws -> ExternalTool.Result {
        try ExternalTool(name).run(["-T", tcti] + arguments)
    }

    /// The public point of the key another user makes from the fixed template ukey used before.
    static func fixedTemplateKey(
        _ attributes: String,
        unique: String?,
        tcti: String,
        in directory: TemporaryDirectory
    ) throws -> Data? {
        var arguments = [
            "-C", "o", "-g", "sha256", "-G", "ecc256:ecdsa-sha256:null", "-a", attributes, "-c",
            directory.file("key.ctx"),
        ]
        if let unique {
            // tpm2-tools reads a TPMU_PUBLIC_ID: for ECC two TPM2B, sizes little-endian (x, then an empty y).
            let x = Array(unique.utf8)
            try directory.write("unique", [UInt8(x.count & 0xFF), UInt8(x.count >> 8)] + x + [0, 0])
            arguments += ["-u", directory.file("unique")]
        }
        let made = try tool("tpm2_createprimary", arguments, tcti: tcti)
        guard made.status == 0 else { throw TestFailure("tpm2_createprimary: \(made.stderr)") }
        let read = try tool(
            "tpm2_readpublic",
            ["-c", directory.file("key.ctx"), "-f", "pem", "-o", directory.file("key.pem")],
            tcti: tcti
        )
        guard read.status == 0 else { throw TestFailure("tpm2_readpublic: \(read.stderr)") }
        _ = try? tool("tpm2_flushcontext", ["-t"], tcti: tcti)
        return try P256.Signing.PublicKey(
            pemRepresentation: String(contentsOfFile: directory.file("key.pem"), encoding: .utf8)
        ).x963Representation
    }

    @Test(
        "the fixed templates (the attestation key's, the token-keys CA's) derive keys that are not the token's; another secret derives others still; the same secret, the same",
        .enabled(if: createPrimary.shouldRun, Comment(rawValue: createPrimary.skipReason))
    )
    func keysAreTheTokens() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let work = try TemporaryDirectory()
        func points(_ secret: TPMObjectSecret) async throws -> (attestation: [UInt8], tokenKeysCA: [UInt8]) {
            let tpm = try TPM(tcti: swtpm.tcti, secret: secret)
            return (try await tpm.attestationKey(), try await tpm.certificateAuthorityKey(.tokenKeys))
        }
        let ours = try await points(tpmTestSecret)
        #expect(try await points(tpmTestSecret) == ours, "the same secret derives the same keys")
        let someoneElse = try await points(.random())
        #expect(someoneElse.attestation != ours.attestation && someoneElse.tokenKeysCA != ours.tokenKeysCA)
        // The attacker's tpm2_createprimary with the templates ukey used before (empty unique; the
        // CA's label as its unique): with the code before, these equalled ukey's keys.
        let attestation = try Self.fixedTemplateKey(
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
            unique: nil,
            tcti: swtpm.tcti,
            in: work
        )
        #expect(
            attestation != nil && attestation != Data(ours.attestation),
            "another TPM user re-created ukey's attestation key"
        )
        let tokenKeys = try Self.fixedTemplateKey(
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
            unique: "ukey token-keys CA",
            tcti: swtpm.tcti,
            in: work
        )
        #expect(
            tokenKeys != nil && tokenKeys != Data(ours.tokenKeysCA),
            "another TPM user re-created ukey's token-keys CA key"
        )
    }

    @Test(
        "the sealed store key unseals with the token's secret only: another secret (another user's storage primary) cannot load it"
    )
    func sealedObjectIsTheTokens() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let storeKey = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let blob = try await TPM(tcti: swtpm.tcti, secret: tpmTestSecret).seal(storeKey)
        #expect(try await TPM(tcti: swtpm.tcti, secret: tpmTestSecret).unseal(blob) == storeKey)
        func asSomeoneElse() async throws -> [UInt8] { try await TPM(tcti: swtpm.tcti, secret: .random()).unseal(blob) }
        await #expect(throws: TPMError.self) { try await asSomeoneElse() }
    }

    @Test(
        "ukey's NV counter moves only with the token's authorization: tpm2_nvincrement by another user fails, and the counter stays where ukeyd left it",
        .enabled(if: createPrimary.shouldRun, Comment(rawValue: createPrimary.skipReason))
    )
    func counterIsTheTokens() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        do {
            let tpm = try TPM(tcti: swtpm.tcti, secret: tpmTestSecret)
            #expect(try await tpm.defineCounterForNewToken() == 1)
            #expect(try await tpm.incrementCounter() == 2)
        }
        // With the code before (an empty auth), this moved the counter and ukeyd never started again.
        let moved = try Self.tool("tpm2_nvincrement", ["0x1554b01"], tcti: swtpm.tcti)
        #expect(moved.status != 0, "another TPM user moved ukey's counter: \(moved.stdout)")
        #expect(try await TPM(tcti: swtpm.tcti, secret: tpmTestSecret).counterValue() == 2)
        // A new token on the same TPM takes the index for itself (an earlier token's counter is
        // replaced; a TPM starts a new counter at the highest value any counter had, so it
        // never goes back).
        let newToken = TPMObjectSecret.random()
        #expect(try await TPM(tcti: swtpm.tcti, secret: newToken).defineCounterForNewToken() >= 2)
        func oldToken() async throws -> UInt64 { try await TPM(tcti: swtpm.tcti, secret: tpmTestSecret).counterValue() }
        await #expect(throws: TPMError.self) { try await oldToken() }
    }
}

/// A failure of the test's own setup, with what was seen.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
