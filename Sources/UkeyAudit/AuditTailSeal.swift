import Crypto
import Foundation
import Glibc
import UkeyCore

/// The audit log's acknowledged tail, sealed after every group commit (`STATE/audit.seal`): the
/// last durable record's `seq`, the file's length after it, and its hash, under an HMAC whose key
/// lives in the token's sealed store. A record is acknowledged only after its batch's seal is on
/// disk, so after any crash a log that ends before the sealed record has lost acknowledged records,
/// and opening it is an integrity error naming the missing ones.
///
/// Signed checkpoints still matter: they prove the records to a verifier who has only the log and
/// the audit certificate. The seal is for the daemon, which has the key; it is cheap enough for
/// every batch (one small write and one fdatasync beside the log's).
///
/// Two slots, written in turn, each with a counter: a write torn by a crash spoils only the slot
/// being written, and the other still holds the previous seal, which covers everything
/// acknowledged (the torn batch was not).
///
/// What it cannot see: an older copy of the whole state directory put back (store, log and seal
/// together). The tpm backend binds the seal to a TPM counter for that; see docs/threat-model.md.
public final class AuditTailSeal: @unchecked Sendable {
    // @unchecked: `counter` is touched by the log's writer alone, after `read` at open.

    public struct State: Sendable, Hashable {
        public var seq: UInt64
        /// The file's length after record `seq`.
        public var end: UInt64
        /// Record `seq`'s hash (hex).
        public var head: String
    }

    public static let fileName = "audit.seal"
    static let magic = Array("UKEYTS01".utf8)
    /// magic 8, counter 8, seq 8, end 8, head 32, HMAC-SHA256 32.
    static let slotBytes = 96

    public let path: String
    private let fd: Int32
    private let key: SymmetricKey
    private var counter: UInt64 = 0

    /// Opens (or creates) the seal file beside the log, refusing one not owned by the daemon or
    /// open to others, like the log itself.
    public init(directory: String, key: [UInt8]) throws(AuditError) {
        path = directory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw AuditError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(),
            info.st_mode & 0o077 == 0
        else {
            Glibc.close(fd)
            throw AuditError(.integrity, "\(path) must be a regular file owned by uid \(geteuid()) with mode 0600")
        }
        self.fd = fd
        self.key = SymmetricKey(data: key)
    }

    deinit { Glibc.close(fd) }

    /// The last seal written, or nil when none ever was (an empty file). A file that holds no
    /// valid slot was tampered with or belongs to another token: an integrity error.
    public func read() throws(AuditError) -> State? {
        var bytes = [UInt8](repeating: 0, count: 2 * Self.slotBytes)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { throw AuditError(.io, "cannot read \(path): \(String(cString: strerror(errno)))") }
        if n == 0 { return nil }
        let slots = (0..<2).compactMap { slot -> (counter: UInt64, state: State)? in
            let start = slot * Self.slotBytes
            guard n >= start + Self.slotBytes else { return nil }
            return decode(Array(bytes[start..<(start + Self.slotBytes)]))
        }
        guard let newest = slots.max(by: { $0.counter < $1.counter }) else {
            throw AuditError(
                .integrity,
                "integrity check failed: \(path) holds no valid seal (edited, or from another token)"
            )
        }
        counter = newest.counter
        return newest.state
    }

    /// Seals `state` durably, in the slot after the last one written.
    public func write(_ state: State) throws(AuditError) {
        counter += 1
        var slot = Self.magic
        for value in [counter, state.seq, state.end] { slot += withUnsafeBytes(of: value.bigEndian, Array.init) }
        slot += Hex.decode(state.head) ?? [UInt8](repeating: 0, count: 32)
        slot += Array(HMAC<SHA256>.authenticationCode(for: slot, using: key))
        let offset = off_t(Int(counter % 2) * Self.slotBytes)
        let written = slot.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, offset) }
        guard written == slot.count, fdatasync(fd) == 0 else {
            throw AuditError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func decode(_ slot: [UInt8]) -> (counter: UInt64, state: State)? {
        guard slot.starts(with: Self.magic) else { return nil }
        let body = Array(slot[0..<64])
        let mac = Array(slot[64..<96])
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: key) else { return nil }
        func integer(_ at: Int) -> UInt64 { body[at..<(at + 8)].reduce(0) { $0 << 8 | UInt64($1) } }
        return (integer(8), State(seq: integer(16), end: integer(24), head: Hex.encode(Array(body[32..<64]))))
    }
}
