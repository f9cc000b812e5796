import Crypto
import Foundation
import Testing
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
