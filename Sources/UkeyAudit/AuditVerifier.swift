import Crypto
import Foundation
import UkeyCore

/// The outcome of verifying an audit log (`io.ukey.Audit.Verify`, `ukeyctl audit verify`).
public struct AuditVerification: Sendable, Hashable {
    public var ok: Bool { firstBad == nil }
    /// Complete records read.
    public var count = 0
    public var checkpoints = 0
    /// Records after the last checkpoint (their order and content are chained, but no signature
    /// covers them yet).
    public var unsignedTail = 0
    /// The 1-based position (the `seq` that belongs there) of the first record that fails.
    public var firstBad: UInt64?
    public var reason: String?
    /// For a file that continues an archive (after a rotation): the archive's name; its records
    /// start at `firstSeq`.
    public var continues: String?
    public var firstSeq: UInt64 = 1
    /// With `continues`: the hash of the archive's last record, as this file's first record states it.
    public var continuesHead: String?
    /// The hash of the last record read (for a file after it, whose `rotated` record must name it).
    public var lastHash: String?
    /// The archives this file records as removed by retention (`archive-removed`), by name.
    public var removedArchives: [String: RemovedArchive] = [:]

    /// Where a removed archive's chain ended, as its removal record states, and that record.
    public struct RemovedArchive: Sendable, Hashable {
        public var upto: UInt64
        public var head: String
        public var recordedAt: UInt64
    }

    /// The seq of the last record read.
    public var lastSeq: UInt64 { firstSeq + UInt64(count) - 1 }
}

/// A checkpoint whose position the sealed store remembers, so cutting records off the end of
/// the log is detected (the hash chain alone cannot tell a truncated log from a short one).
public struct SealedCheckpoint: Codable, Sendable, Hashable {
    public var seq: UInt64
    /// Byte offset of the checkpoint's line in the file.
    public var offset: UInt64
    /// The checkpoint record's hash.
    public var hash: String

    public init(seq: UInt64, offset: UInt64, hash: String) {
        self.seq = seq
        self.offset = offset
        self.hash = hash
    }
}

extension AuditVerifier {
    /// The seq of a log file's first record (1, or where a file after a rotation continues).
    public static func firstSeq(_ path: String) -> UInt64? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var reader = AuditFileReader(fd: fd, offset: 0)
        guard case .line(let line)? = try? reader.next(), let parsed = try? AuditLine.parse(line.bytes) else {
            return nil
        }
        return parsed.seq
    }
}

/// Checks a whole log: each record's own hash, its `seq`, its link to the one before, and every
/// checkpoint's signature; with a sealed checkpoint, also that the log reaches it.
public enum AuditVerifier {
    /// - Parameters:
    ///   - auditKey: the audit key's public key; nil checks the chain only (checkpoints unsigned-checked).
    ///   - sealed: the sealed store's last checkpoint, if the verifier has it (the daemon does).
    public static func verify(
        path: String,
        auditKey: P256.Signing.PublicKey?,
        sealed: SealedCheckpoint? = nil
    ) throws(AuditError) -> AuditVerification {
        try verify(path: path, checkpointKey: auditKey.map(CheckpointKey.init(p256:)), sealed: sealed)
    }

    /// The same with the audit key as a `CheckpointKey`: its algorithm (which each checkpoint's
    /// `alg` must name) and its check of (signature, signed message).
    public static func verify(
        path: String,
        checkpointKey: CheckpointKey?,
        sealed: SealedCheckpoint? = nil
    ) throws(AuditError) -> AuditVerification {
        let auditKey = checkpointKey
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw AuditError(.io, "cannot open the audit log \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var reader = AuditFileReader(fd: fd, offset: 0)
        var result = AuditVerification()
        var prev = AuditLine.genesis
        var sealedSeen = false
        func fail(_ position: UInt64, _ reason: String) -> AuditVerification {
            result.firstBad = position
            result.reason = reason
            return result
        }
        var base: UInt64 = 0
        while let item = try reader.next() {
            var position = base + UInt64(result.count + 1)
            let line: AuditFileReader.Line
            switch item {
            case .line(let l): line = l
            case .partial: return fail(position, "record \(position) is cut short: the file ends without its newline")
            case .oversized: return fail(position, "record \(position) is longer than \(AuditLine.maxBytes) bytes")
            }
            let parsed: AuditLine.Parsed
            do {
                parsed = try AuditLine.parse(line.bytes)
            } catch {
                return fail(position, "record \(position) (byte \(line.offset)) is not a valid record: \(error)")
            }
            guard parsed.selfConsistent else {
                return fail(position, "record \(position) was altered: its bytes do not match its hash")
            }
            if result.count == 0, parsed.type == "rotated", let upto = parsed.upto, parsed.seq == upto + 1,
                parsed.head == parsed.prev
            {
                // A file after a rotation: its chain continues the named archive's last record.
                base = upto
                position = parsed.seq
                prev = parsed.prev
                result.continues = parsed.previous
                result.continuesHead = parsed.prev
                result.firstSeq = parsed.seq
            }
            guard parsed.seq == position else {
                return fail(
                    position,
                    "record \(position) is missing or out of order: found seq \(parsed.seq) in its place"
                )
            }
            guard parsed.prev == prev else {
                // This record is intact in itself, so the one before it was rewritten (with its hash recomputed).
                let bad = max(1, position - 1)
                return fail(
                    bad,
                    "record \(bad) was rewritten: record \(position) was chained to a different record \(bad)"
                )
            }
            if parsed.type == AuditRetention.removalRecord, let name = parsed.previous, let upto = parsed.upto,
                let head = parsed.head
            {
                result.removedArchives[name] = .init(upto: upto, head: head, recordedAt: position)
            }
            if parsed.type == "checkpoint" {
                guard parsed.upto == position - 1, parsed.head == parsed.prev, let signature = parsed.signature else {
                    return fail(position, "checkpoint \(position) does not cover the records before it")
                }
                if let auditKey {
                    // The record's alg is the writer's word only: it must agree with the key the
                    // certificate gives, and an absent one means a log from before SM2 (P-256).
                    let stated = parsed.algorithm ?? CheckpointKey.p256Algorithm
                    guard stated == auditKey.algorithm else {
                        return fail(
                            position,
                            "checkpoint \(position) says it is signed \(stated), but the audit key is \(auditKey.algorithm)"
                        )
                    }
                    let message =
                        AuditCheckpoint.signingDomain + AuditLine.checkpointMessage(seq: position, head: parsed.prev)
                    guard auditKey.isValid(signature, message) else {
                        return fail(
                            position,
                            "checkpoint \(position) has a signature the audit key did not make (forged)"
                        )
                    }
                }
                result.checkpoints += 1
                result.unsignedTail = 0
            } else {
                result.unsignedTail += 1
            }
            if let sealed, sealed.seq == position {
                guard sealed.hash == parsed.hash, sealed.offset == line.offset else {
                    return fail(position, "record \(position) is not the checkpoint the sealed store remembers")
                }
                sealedSeen = true
            }
            prev = parsed.hash
            result.lastHash = parsed.hash
            result.count += 1
        }
        if let sealed, !sealedSeen, sealed.seq > base {
            return fail(
                base + UInt64(result.count + 1),
                "records were cut off the end: the log ends at record \(base + UInt64(result.count)), but checkpoint \(sealed.seq) was written and sealed"
            )
        }
        return result
    }
}
