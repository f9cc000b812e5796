import Crypto
import Foundation
import UkeyCodec
import UkeyCore

/// One audit record as bytes: a JSON object on one line whose last member is `hash`, the SHA-256
/// of every byte before `,"hash":"`. `prev` is the previous record's `hash` (64 zeros for the
/// first), so each record pins the whole log before it, and a changed byte shows at the record
/// it is in, not only at the next one.
///
/// ```
/// {"seq":7,"time":"2026-11-27T01:02:03.456Z","type":"measure","actor":{"uid":0,"pid":812,"role":"hypervisor"},
///  "subject":{"component":"kernel","digest":"sha256:...","entity":"kvm-host"},"prev":"<hex>","hash":"<hex>"}
/// ```
/// A checkpoint record has `type` "checkpoint", subject `upto` (seq - 1), `head` (= prev) and
/// `alg` (the signature's algorithm: "ecdsa-p256-sha256" or "sm2-sm3"; absent in logs written
/// before it, which are P-256), and `sig`: the audit key's signature (base64 DER) over
/// `AuditCheckpoint.signingDomain + "ukey-audit-v1 checkpoint seq=<seq> head=<prev>"`.
public enum AuditLine {
    public static let genesis = String(repeating: "0", count: 64)
    /// No record is longer; a longer line is garbage, refused before it is parsed.
    public static let maxBytes = 64 << 10
    /// Longer subject strings are cut (and say so), so a caller cannot push a record over `maxBytes`.
    static let maxValueBytes = 4096
    static let hashMarker = Array(#","hash":""#.utf8)
    /// `,"hash":"` + 64 hex + `"}`
    static let suffixLength = hashMarker.count + 64 + 2

    /// The domain-separated bytes the audit key signs for a checkpoint at `seq` over `head`.
    public static func checkpointMessage(seq: UInt64, head: String) -> [UInt8] {
        Array("ukey-audit-v1 checkpoint seq=\(seq) head=\(head)".utf8)
    }

    /// The record's line, without the newline, and its hash (hex).
    package static func encode(
        seq: UInt64,
        time: Date,
        entry: AuditEntry,
        prev: String,
        signature: [UInt8]? = nil
    ) -> (line: [UInt8], hash: String) {
        var out: [UInt8] = []
        out.reserveCapacity(384)
        out.append(contentsOf: #"{"seq":"#.utf8)
        out.append(contentsOf: String(seq).utf8)
        out.append(contentsOf: #","time":"#.utf8)
        JSONWriter.writeString(Timestamp.format(time), into: &out)
        out.append(contentsOf: #","type":"#.utf8)
        JSONWriter.writeString(entry.type, into: &out)
        if let actor = entry.actor {
            out.append(contentsOf: #","actor":{"uid":\#(actor.uid),"pid":\#(actor.pid),"role":"#.utf8)
            JSONWriter.writeString(actor.role, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #","subject":{"#.utf8)
        for (i, key) in entry.subject.keys.sorted().enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.writeString(key, into: &out)
            out.append(UInt8(ascii: ":"))
            bounded(entry.subject[key]!).write(to: &out)
        }
        out.append(UInt8(ascii: "}"))
        if let signature {
            out.append(contentsOf: #","sig":"#.utf8)
            JSONWriter.writeString(Data(signature).base64EncodedString(), into: &out)
        }
        out.append(contentsOf: #","prev":"#.utf8)
        JSONWriter.writeString(prev, into: &out)
        let hash = Hex.encode(Array(SHA256.hash(data: out)))
        out.append(contentsOf: hashMarker)
        out.append(contentsOf: hash.utf8)
        out.append(contentsOf: #""}"#.utf8)
        return (out, hash)
    }

    private static func bounded(_ value: AuditValue) -> AuditValue {
        guard case .string(let s) = value, s.utf8.count > maxValueBytes else { return value }
        var cut = Substring(s).prefix(maxValueBytes)
        while cut.utf8.count > maxValueBytes { cut = cut.dropLast() }
        return .string(cut + " [truncated]")
    }

    /// What the verifier needs of a line.
    public struct Parsed: Sendable {
        public let seq: UInt64
        public let type: String
        public let prev: String
        public let hash: String
        /// The stated hash matches the bytes.
        public let selfConsistent: Bool
        public let upto: UInt64?
        public let head: String?
        public let signature: [UInt8]?
        /// A checkpoint's stated signature algorithm, if it states one.
        public var algorithm: String? = nil
        /// A `rotated` record's archive: the file its chain continues from. An
        /// `archive-removed` record's: the archive retention removed (its `upto` and `head` are
        /// the archive's last record and that record's hash).
        public var previous: String? = nil
    }

    /// Parses one line (without its newline). Untrusted: bounded, and anything that is not a
    /// record of this format is an error saying what is wrong.
    public static func parse(_ line: some Collection<UInt8>) throws(AuditError) -> Parsed {
        let bytes = Array(line)
        guard bytes.count <= maxBytes else {
            throw AuditError(.integrity, "the line is \(bytes.count) bytes; a record is at most \(maxBytes)")
        }
        guard bytes.count > suffixLength, bytes.last == UInt8(ascii: "}"),
            Array(bytes[(bytes.count - suffixLength)..<(bytes.count - suffixLength + hashMarker.count)]) == hashMarker
        else {
            throw AuditError(.integrity, "the line does not end with its \"hash\" member")
        }
        let body = bytes[..<(bytes.count - suffixLength)]
        // The one strict reader: a duplicate key, a lone surrogate or trailing bytes are as much an
        // integrity error as a wrong hash, since two readers could see two different records.
        let object: [String: JSONValue]
        do {
            guard let parsed = try JSONReader.parse(bytes).objectValue else {
                throw AuditError(.integrity, "the line is not a JSON object")
            }
            object = parsed
        } catch let error as AuditError {
            throw error
        } catch {
            throw AuditError(.integrity, "the line is not valid JSON: \(error)")
        }
        func unsigned(_ value: JSONValue?) -> UInt64? {
            if case .int(let number)? = value, number >= 0 { return UInt64(number) }
            return nil
        }
        guard let seq = unsigned(object["seq"]), seq > 0,
            let type = object["type"]?.stringValue, object["time"]?.stringValue != nil,
            let prev = object["prev"]?.stringValue, isHex64(prev),
            let hash = object["hash"]?.stringValue, isHex64(hash),
            let subject = object["subject"]?.objectValue
        else {
            throw AuditError(
                .integrity,
                "the record lacks one of seq, time, type, subject, prev, hash, or one has the wrong type"
            )
        }
        let computed = Hex.encode(Array(SHA256.hash(data: Array(body))))
        var upto: UInt64?
        var head: String?
        var signature: [UInt8]?
        var algorithm: String?
        if type == "checkpoint" {
            guard let u = unsigned(subject["upto"]),
                let h = subject["head"]?.stringValue,
                let s = object["sig"]?.stringValue.flatMap({ Data(base64Encoded: $0) })
            else {
                throw AuditError(.integrity, "the checkpoint lacks upto, head or a base64 sig")
            }
            (upto, head, signature) = (u, h, Array(s))
            if let stated = subject["alg"] {
                guard let name = stated.stringValue, (1...32).contains(name.utf8.count) else {
                    throw AuditError(.integrity, "the checkpoint's alg is not a short string")
                }
                algorithm = name
            }
        }
        var previous: String?
        if type == "rotated" {
            guard let u = unsigned(subject["upto"]),
                let h = subject["head"]?.stringValue, isHex64(h),
                let file = subject["previous"]?.stringValue, AuditRotation.isArchiveName(file)
            else {
                throw AuditError(.integrity, "the rotated record lacks upto, head or a previous archive's name")
            }
            (upto, head, previous) = (u, h, file)
        }
        if type == AuditRetention.removalRecord {
            guard let u = unsigned(subject["upto"]),
                let h = subject["head"]?.stringValue, isHex64(h),
                let file = subject["archive"]?.stringValue, AuditRotation.isArchiveName(file)
            else {
                throw AuditError(.integrity, "the archive-removed record lacks upto, head or the archive's name")
            }
            (upto, head, previous) = (u, h, file)
        }
        var parsed = Parsed(
            seq: seq,
            type: type,
            prev: prev,
            hash: hash,
            selfConsistent: computed == hash,
            upto: upto,
            head: head,
            signature: signature
        )
        parsed.previous = previous
        parsed.algorithm = algorithm
        return parsed
    }

    static func isHex64(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

/// RFC 3339 UTC with milliseconds, formatted without a formatter object (appends are hot).
enum Timestamp {
    static func format(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms % 1000), 3))Z"
    }
}
