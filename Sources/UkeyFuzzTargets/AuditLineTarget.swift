import Crypto
import Foundation
import UkeyAudit
import UkeyCore

extension FuzzTarget {
    /// One audit record, as the verifier reads a log it cannot trust.
    static let auditLine = FuzzTarget(
        name: "audit-line",
        property:
            "a record is taken only if it ends with its hash member, and is self-consistent exactly when that hash is the SHA-256 of the bytes before it",
        check: { bytes throws(FuzzFailure) in
            guard let parsed = try? AuditLine.parse(bytes) else { return }
            let suffix = #","hash":""#.utf8.count + 64 + 2
            try require(
                bytes.count > suffix && String(decoding: bytes.suffix(66).prefix(64), as: UTF8.self) == parsed.hash,
                "the hash read is not the line's last member"
            )
            let computed = Hex.encode(Array(SHA256.hash(data: Array(bytes.dropLast(suffix)))))
            try require(
                parsed.selfConsistent == (computed == parsed.hash),
                "selfConsistent is \(parsed.selfConsistent) for a line whose hash \(computed == parsed.hash ? "matches" : "does not match")"
            )
            try require(
                parsed.algorithm.map { parsed.type == "checkpoint" && (1...32).contains($0.utf8.count) } ?? true,
                "an alg taken outside a checkpoint, or of 0 or over 32 bytes"
            )
        },
        seeds: {
            let actor = AuditActor(uid: 0, pid: 812, role: "hypervisor")
            let first = AuditLine.encode(
                seq: 1,
                time: Date(timeIntervalSince1970: 1_800_000_000),
                entry: AuditEntry(
                    type: "measure",
                    actor: actor,
                    subject: ["entity": "vmm", "digest": "sha256:00", "load": true, "register": 8]
                ),
                prev: AuditLine.genesis
            )
            let checkpoint = AuditLine.encode(
                seq: 2,
                time: Date(timeIntervalSince1970: 1_800_000_001),
                entry: AuditEntry(type: "checkpoint", actor: nil, subject: ["upto": 1, "head": .string(first.hash)]),
                prev: first.hash,
                signature: [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]
            )
            let stated = AuditLine.encode(
                seq: 3,
                time: Date(timeIntervalSince1970: 1_800_000_002),
                entry: AuditEntry(
                    type: "checkpoint",
                    actor: nil,
                    subject: ["upto": 2, "head": .string(checkpoint.hash), "alg": "sm2-sm3"]
                ),
                prev: checkpoint.hash,
                signature: [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]
            )
            return [first.line, checkpoint.line, stated.line]
        }
    )
}
