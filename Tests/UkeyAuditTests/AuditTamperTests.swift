import Crypto
import Foundation
import Testing
import UkeyAudit
import UkeyCore
import UkeyTesting

@Suite("Audit log: every kind of tampering is reported at the right record")
struct AuditTamperTests {
    /// 10 records with checkpoints after every 4 (and one at close): 13 lines.
    static func sample() async throws -> (TemporaryDirectory, TestCheckpointing, [[UInt8]]) {
        let dir = try TemporaryDirectory()
        let signer = TestCheckpointing()
        let log = try AuditLog.make(in: dir, every: 4, signer)
        for n in 1...10 { try await log.append(entry(n)) }
        await log.close()
        return (dir, signer, try lines(dir.path + "/audit.log"))
    }

    func verify(
        _ dir: TemporaryDirectory,
        _ signer: TestCheckpointing,
        _ lines: [[UInt8]],
        sealed: Bool = false,
        newline: Bool = true
    ) throws -> AuditVerification {
        try write(lines, to: dir.path + "/audit.log", trailingNewline: newline)
        return try AuditVerifier.verify(
            path: dir.path + "/audit.log",
            auditKey: signer.key.publicKey,
            sealed: sealed ? signer.sealed : nil
        )
    }

    @Test("changing any byte of any record names that record")
    func everyByte() async throws {
        let (dir, signer, original) = try await Self.sample()
        #expect(original.count == 13)
        var checked = 0
        for (index, line) in original.enumerated() {
            for offset in line.indices {
                var edited = original
                edited[index][offset] ^= 0x01
                let result = try verify(dir, signer, edited)
                #expect(
                    result.firstBad == UInt64(index + 1),
                    "byte \(offset) of record \(index + 1): \(result.reason ?? "ok")"
                )
                checked += 1
            }
        }
        #expect(checked > 2500)
    }

    @Test("deleting a record, swapping two, or cutting the end is reported at the right position")
    func structure() async throws {
        let (dir, signer, original) = try await Self.sample()
        for i in 0..<original.count {
            var deleted = original
            deleted.remove(at: i)
            let result = try verify(dir, signer, deleted, sealed: true)
            #expect(result.firstBad == UInt64(i + 1), "deleting \(i + 1): \(result.reason ?? "ok")")
        }
        for i in 0..<(original.count - 1) {
            var swapped = original
            swapped.swapAt(i, i + 1)
            #expect(try verify(dir, signer, swapped).firstBad == UInt64(i + 1))
        }
        // Cut at a record boundary: only the sealed checkpoint tells.
        let cut = Array(original.prefix(9))
        #expect(try verify(dir, signer, cut).ok)
        let sealedResult = try verify(dir, signer, cut, sealed: true)
        #expect(sealedResult.firstBad == 10)
        #expect(sealedResult.reason?.contains("cut off the end") == true)
        // Cut inside a record.
        var torn = original
        torn[12] = Array(torn[12].prefix(40))
        let tornResult = try verify(dir, signer, torn, newline: false)
        #expect(tornResult.firstBad == 13)
    }

    @Test("a rewritten record (hash recomputed) and a forged checkpoint are caught")
    func forgery() async throws {
        let (dir, signer, original) = try await Self.sample()
        // Rewrite record 3 consistently: its own hash checks out, record 4's link does not.
        var object = try #require(JSONSerialization.jsonObject(with: Data(original[2])) as? [String: Any])
        object["type"] = "measure"
        let rewritten = try rewrite(object)
        var edited = original
        edited[2] = rewritten
        let result = try verify(dir, signer, edited)
        #expect(result.firstBad == 3, "\(result.reason ?? "ok")")

        // A checkpoint signed by another key, appended with a correct chain.
        let last = try JSONSerialization.jsonObject(with: Data(original.last!)) as? [String: Any]
        let head = try #require(last?["hash"] as? String)
        let seq = UInt64(original.count + 1)
        let forger = P256.Signing.PrivateKey()
        let sig = Array(
            try forger.signature(for: AuditCheckpoint.signingDomain + AuditLine.checkpointMessage(seq: seq, head: head))
                .derRepresentation
        )
        let forged = try rewrite([
            "seq": seq, "time": "2026-11-27T00:00:00.000Z", "type": "checkpoint",
            "subject": ["upto": seq - 1, "head": head], "sig": Data(sig).base64EncodedString(), "prev": head,
        ])
        let forgedResult = try verify(dir, signer, original + [forged])
        #expect(forgedResult.firstBad == seq)
        #expect(forgedResult.reason?.contains("forged") == true)
    }

    /// Re-encodes a record with a correct self-hash, as an attacker with write access could.
    func rewrite(_ object: [String: Any]) throws -> [UInt8] {
        var body = object
        body.removeValue(forKey: "hash")
        var text = Array(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]))
        text.removeLast()  // the closing brace
        let hash = Hex.encode(SHA256.hash(data: text))
        return text + Array(#","hash":"\#(hash)"}"#.utf8)
    }

    @Test(
        "a record with a key given twice is an integrity error, even with a self-consistent hash: two readers could see two records"
    )
    func duplicateKeyIsRefused() async throws {
        let (_, _, original) = try await Self.sample()
        let line = try #require(original.first { String(decoding: $0, as: UTF8.self).contains(#""type":"exec""#) })
        // Insert `"type":"measure",` after the opening brace and recompute the hash over the body.
        let body = Array(line.dropLast(AuditLine.genesis.count + #","hash":""}"#.count))
        let duplicated = [UInt8(ascii: "{")] + Array(#""type":"measure","#.utf8) + body.dropFirst()
        let forged =
            duplicated + Array(#","hash":""#.utf8) + Array(Hex.encode(Array(SHA256.hash(data: duplicated))).utf8)
            + Array(#""}"#.utf8)
        #expect(throws: Never.self) { try AuditLine.parse(line) }
        #expect { try AuditLine.parse(forged) } throws: { "\($0)".contains("given twice") }
    }

    @Test("the line parser survives random and mutated input")
    func fuzz() async throws {
        let (_, _, original) = try await Self.sample()
        var rng = SeededRandom.forTest()
        for line in original { #expect(try AuditLine.parse(line).selfConsistent) }
        var taken = 0
        for _ in 0..<3000 {
            let unchanged = original.randomElement(using: &rng)!
            var line = unchanged
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: line[Int.random(in: 0..<line.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1:
                    line.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...line.count, using: &rng))
                default: if line.count > 1 { line.remove(at: Int.random(in: 0..<line.count, using: &rng)) }
                }
            }
            // No change to a record's bytes goes unnoticed: it is refused, or read with a hash that does not match.
            guard line != unchanged, let parsed = try? AuditLine.parse(line) else { continue }
            taken += 1
            #expect(!parsed.selfConsistent, "\(String(decoding: line, as: UTF8.self)); \(rng)")
        }
        #expect(taken > 0, "no mutation was read as a record, so the property went untested; \(rng)")
        for size in [0, 1, 80, 1000, AuditLine.maxBytes + 1] {
            let garbage = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(throws: AuditError.self) { try AuditLine.parse(garbage) }
        }
    }
}
