import Crypto
import Foundation
import Testing
import UkeyStore
import UkeyTPM
import UkeyTesting

@Suite("TPM through tpm2-tss, against swtpm", .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)"))
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
            let tpm = try TPM(tcti: swtpm.tcti)
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
        #expect(tool.stdout.lowercased().contains(expected.map { String(format: "%02x", $0) }.joined()), "\(tool.stdout)")
    }

    @Test("random bytes come from the TPM; bad requests and a TPM that is not there are clear errors")
    func randomAndErrors() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let tpm = try TPM(tcti: swtpm.tcti)
        let a = try await tpm.random(count: 100), b = try await tpm.random(count: 100)
        #expect(a.count == 100 && b.count == 100 && a != b)
        await #expect(throws: TPMError.self) { try await tpm.extend(pcr: 24, sha256: [UInt8](repeating: 1, count: 32)) }
        await #expect(throws: TPMError.self) { try await tpm.extend(pcr: 16, sha256: [1, 2, 3]) }
        #expect { try TPM(tcti: "swtpm:path=\(swtpm.directory.file("nothing-here"))") } throws: { error in
            let text = "\(error)"
            return text.contains("opening the TPM") || text.contains("starting a session")
        }
    }
}

@Suite("A TPM that goes away and comes back", .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)"))
struct TPMReconnectTests {
    @Test("the command in flight fails with a transport error; the next one connects again; the audit key is the same after the restart")
    func reconnect() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let tpm = try TPM(tcti: swtpm.tcti)
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
        #expect(publicKey.isValidSignature(try P256.Signing.ECDSASignature(rawRepresentation: signed.signature), for: SHA256.hash(data: Array("checkpoint".utf8))))
    }
}

extension TPMReconnectTests {
    @Test("the TPM dies while a command waits for its answer: that very command fails with a transport error, and the next one reconnects and succeeds")
    func commandInFlight() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let tpm = try TPM(tcti: swtpm.tcti)
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

@Suite("TPM quotes, checked by tpm2_checkquote", .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)"))
struct TPMQuoteTests {
    static let checkquote = ExternalTool("tpm2_checkquote")

    @Test("a TPM2_Quote by the attestation key verifies with tpm2_checkquote and our nonce, and fails with another")
    func quote() async throws {
        let swtpm = try SoftwareTPM()
        defer { swtpm.stop() }
        let nonce = (0..<16).map { _ in UInt8.random(in: 0...255) }
        func quoteOnce() async throws -> (TPMQuote, TPMQuote) {
            let tpm = try TPM(tcti: swtpm.tcti)
            try await tpm.extend(pcr: 16, sha256: Array(SHA256.hash(data: Array("vmm".utf8))))
            let first = try await tpm.quote(nonce: nonce, pcrs: [16])
            return (first, try await tpm.quote(nonce: nonce, pcrs: [16]))
        }
        let (quote, again) = try await quoteOnce()
        #expect(quote.attestationKey == again.attestationKey, "the attestation key is derived from a fixed template: the same each time")
        let work = try TemporaryDirectory()
        let key = try P256.Signing.PublicKey(x963Representation: quote.attestationKey)
        try key.pemRepresentation.write(toFile: work.file("ak.pem"), atomically: true, encoding: .utf8)
        try Data(quote.attest).write(to: URL(fileURLWithPath: work.file("attest")))
        try Data(quote.signature).write(to: URL(fileURLWithPath: work.file("sig")))
        let hex = { (b: [UInt8]) in b.map { String(format: "%02x", $0) }.joined() }
        let good = try Self.checkquote.run(["-u", work.file("ak.pem"), "-m", work.file("attest"), "-s", work.file("sig"), "-g", "sha256", "-q", hex(nonce)])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        let bad = try Self.checkquote.run(["-u", work.file("ak.pem"), "-m", work.file("attest"), "-s", work.file("sig"), "-g", "sha256", "-q", hex(nonce.reversed())])
        #expect(bad.status != 0)
    }
}

@Suite("The swtpm make test starts")
struct SharedSoftwareTPMTests {
    @Test("make test's swtpm answers at UKEY_TEST_TCTI (required under CI=true)", .enabled(if: ExternalTool.inCI || ProcessInfo.processInfo.environment["UKEY_TEST_TCTI"] != nil, "UKEY_TEST_TCTI is not set: make test starts a swtpm and sets it"))
    func shared() async throws {
        let tcti = try #require(ProcessInfo.processInfo.environment["UKEY_TEST_TCTI"], "scripts/test.sh did not start swtpm")
        let tpm = try TPM(tcti: tcti)
        #expect(try await tpm.random(count: 32).count == 32)
    }
}

@Suite("TPM sealing", .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)"))
struct TPMSealTests {
    @Test("a secret sealed to a TPM unseals on that TPM, and not on a fresh one (another machine); a damaged blob is a clear error")
    func seal() async throws {
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let machine = try SoftwareTPM(), other = try SoftwareTPM()
        defer {
            machine.stop()
            other.stop()
        }
        func roundTrip() async throws -> ([UInt8], [UInt8]) {
            let tpm = try TPM(tcti: machine.tcti)
            let blob = try await tpm.seal(secret)
            return (blob, try await tpm.unseal(blob))
        }
        let (blob, unsealed) = try await roundTrip()
        #expect(unsealed == secret)
        #expect(!blob.contains(secret), "the blob must not carry the secret in the clear")
        func elsewhere() async throws -> [UInt8] { try await TPM(tcti: other.tcti).unseal(blob) }
        await #expect { try await elsewhere() } throws: { "\($0)".contains("was it sealed by this TPM?") }
        func damaged() async throws -> [UInt8] { try await TPM(tcti: machine.tcti).unseal(Array(blob.dropLast(5))) }
        await #expect { try await damaged() } throws: { "\($0)".contains("damaged") }
    }
}

extension Array where Element == UInt8 {
    func contains(_ other: [UInt8]) -> Bool {
        guard other.count <= count else { return false }
        return (0...(count - other.count)).contains { Array(self[$0..<($0 + other.count)]) == other }
    }
}

@Suite("The sealed store with its key sealed to a TPM", .enabled(if: SoftwareTPM.tool.shouldRun, "swtpm is not installed (make test installs it)"))
struct TPMStoreTests {
    @Test("the store opens on the same TPM and, copied to another machine, fails with a clear integrity error")
    func storeKeyOnTPM() throws {
        let machine = try SoftwareTPM(), other = try SoftwareTPM()
        defer {
            machine.stop()
            other.stop()
        }
        let state = try TemporaryDirectory()
        let directory = state.file("state")
        var store = try SealedStore.create(in: directory, protector: TPMStoreKeyProtector(tcti: machine.tcti), initial: ["greeting": Array("hello".utf8)])
        try store.commit(["second": Array("record".utf8)])
        let reopened = try SealedStore.open(in: directory, protector: TPMStoreKeyProtector(tcti: machine.tcti))
        #expect(reopened["greeting"] == Array("hello".utf8))
        #expect(reopened["second"] == Array("record".utf8))
        #expect {
            try SealedStore.open(in: directory, protector: TPMStoreKeyProtector(tcti: other.tcti))
        } throws: { error in
            let text = "\(error)"
            return text.contains("integrity") && text.contains("does not unseal with tpm")
        }
        // A store sealed by the soft token's device key is not opened as a TPM one, or the other way round.
        #expect { try SealedStore.open(in: directory, protector: DeviceKeyProtector(stateDirectory: directory)) } throws: { "\($0)".contains("sealed by 'tpm'") }
    }
}
