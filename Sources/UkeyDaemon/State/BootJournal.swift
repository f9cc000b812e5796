import Foundation
import UkeyCore

/// The measurements of the current host boot, kept in the runtime directory (`/run/ukey`, a tmpfs
/// emptied when the host reboots). Registers and chain state are per boot: a restart of ukeyd
/// alone must not reset them, or an attacker who crashes the daemon could measure again. On start
/// ukeyd replays this journal; a new host boot (different kernel boot id) starts a new one.
///
/// Format: JSON lines; the first is `{"hostBoot":…,"boot":…}`, then one `{"e":…,"c":…,"d":…}` per
/// measurement (with the register it extended, which a later policy may no longer say), appended
/// and fsynced before the measurement is answered. With registers that cannot be reset (a TPM's
/// PCRs) a `Boot.Reset` appends `{"reset":<new boot>}` instead of starting afresh: the earlier
/// measurements are still in the PCRs, so they stay in the event log that explains them.
final class BootJournal {
    struct Header: Codable { var hostBoot: String; var boot: String }
    struct Entry: Codable, Sendable { var e: String; var c: String; var d: String; var r: Int }
    struct ResetMarker: Codable { var reset: String }
    /// The last `void` measurements were not taken (the token refused the extends).
    struct VoidMarker: Codable { var void: Int }
    /// An entity was released (its VM stopped) after the measurements before this line.
    struct ReleaseMarker: Codable { var release: String }

    /// This host boot's journal: the current boot session and its measurements, and those of
    /// earlier sessions whose registers could not be reset.
    struct Contents {
        var boot: String
        var earlier: [Measurement]
        var entries: [Measurement]
        /// Releases in this boot session: the entity, and how many of `entries` came before it.
        var releases: [(after: Int, entity: String)] = []
    }

    /// One recorded measurement.
    struct Measurement: Sendable {
        var entity: String
        var component: String
        var digest: Digest
        var register: Int
    }

    /// The most measurements one host boot's journal holds, by default. Past it ukeyd refuses
    /// further measurements (`io.ukey.Boot.JournalFull`): it never forgets one to make room.
    static let maxEntries = DaemonCore.defaultMaxMeasurements
    /// The longest line `append` writes: entity and component names are at most 64 characters,
    /// each escaped to at most 6 bytes, plus a digest and a register.
    static let maxLineBytes = 1024
    let path: String
    /// The measurements this journal may hold (settings: `[boot] max-measurements`).
    let limit: Int
    /// A journal larger than its limit allows was not written by this ukeyd: it is refused whole.
    var maxBytes: Int { (limit + 64) * Self.maxLineBytes }
    /// Kept open between appends (a measurement's append is on the boot path); reopened after
    /// `start` replaces the file.
    private var appendFD: Int32 = -1

    init(runtimeDirectory: String, limit: Int = maxEntries) {
        path = runtimeDirectory + "/boot.journal"
        self.limit = limit
    }

    /// The journal of this host boot, or nil when there is none or it is from another host boot.
    /// Throws when it cannot be read whole: a measurement forgotten would let an entity that was
    /// found tampered pass for trusted after a restart, so ukeyd does not start on it.
    func load(hostBoot: String) throws(JournalError) -> Contents? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw JournalError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard Int(info.st_size) <= maxBytes else {
            throw JournalError("\(path) is \(info.st_size) bytes, more than a journal of \(limit) measurements can be; ukeyd will not start on a journal it cannot read whole (restart the host to begin a new boot)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JournalError("cannot read \(path)")
        }
        // Every complete line ends in a newline; only the last may lack it (cut by a crash
        // mid-append, so never acknowledged).
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() } else if !lines.isEmpty { lines.removeLast() }
        guard let first = lines.first else { return nil }
        guard let header = try? JSONDecoder().decode(Header.self, from: Data(first)) else {
            throw JournalError("\(path): its first line is not a journal header; ukeyd will not start on a journal it cannot read (restart the host to begin a new boot)")
        }
        guard header.hostBoot == hostBoot else { return nil }
        var contents = Contents(boot: header.boot, earlier: [], entries: [])
        for (number, line) in lines.enumerated().dropFirst() {
            if let marker = try? JSONDecoder().decode(ResetMarker.self, from: Data(line)) {
                contents.earlier += contents.entries
                contents.entries = []
                contents.releases = []
                contents.boot = marker.reset
                continue
            }
            if let marker = try? JSONDecoder().decode(ReleaseMarker.self, from: Data(line)) {
                contents.releases.append((contents.entries.count, marker.release))
                continue
            }
            if let marker = try? JSONDecoder().decode(VoidMarker.self, from: Data(line)) {
                contents.entries.removeLast(min(max(0, marker.void), contents.entries.count))
                continue
            }
            guard let entry = try? JSONDecoder().decode(Entry.self, from: Data(line)), let digest = try? Digest(parsing: entry.d),
                (0..<ExpectedSet.registerCount).contains(entry.r)
            else {
                throw JournalError("\(path) line \(number + 1) is not a measurement; ukeyd will not start on a journal it cannot read whole (restart the host to begin a new boot)")
            }
            contents.entries.append(Measurement(entity: entry.e, component: entry.c, digest: digest, register: entry.r))
            guard contents.earlier.count + contents.entries.count <= limit else {
                throw JournalError("\(path) holds more than \(limit) measurements ([boot] max-measurements); ukeyd will not start on a journal it cannot read whole: raise the limit or restart the host")
            }
        }
        return contents
    }

    /// Withdraws the last `count` measurements: their extends failed, so they never happened.
    func appendVoid(count: Int) throws {
        try appendLine(try JSONEncoder().encode(VoidMarker(void: count)))
    }

    /// Records a release durably, before the chain forgets the entity's measurements.
    func appendRelease(entity: String) throws {
        try appendLine(try JSONEncoder().encode(ReleaseMarker(release: entity)))
    }

    /// Starts a new boot session in this journal, keeping the earlier measurements.
    func appendReset(boot: String) throws {
        try appendLine(try JSONEncoder().encode(ResetMarker(reset: boot)))
    }

    /// Starts a new journal for a new boot, replacing any old one.
    func start(hostBoot: String, boot: String) throws {
        let header = try JSONEncoder().encode(Header(hostBoot: hostBoot, boot: boot)) + Data("\n".utf8)
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: header, attributes: [.posixPermissions: 0o600]) else {
            throw JournalError("cannot create \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw JournalError("cannot create \(path): \(String(cString: strerror(errno)))") }
        closeAppendFD()
    }

    private func closeAppendFD() {
        if appendFD >= 0 { close(appendFD) }
        appendFD = -1
    }

    deinit { closeAppendFD() }

    /// Appends one measurement durably.
    /// The line is written by hand rather than by JSONEncoder (which costs more than the write
    /// on this path); `load` reads it with JSONDecoder like any other.
    /// Appends measurements durably: one write and one fsync for all of them.
    func append(_ measurements: [Measurement]) throws {
        var lines: [UInt8] = []
        for (index, measurement) in measurements.enumerated() {
            if index > 0 { lines.append(UInt8(ascii: "\n")) }
            lines += Array(#"{"e":"#.utf8)
            Self.appendJSONString(measurement.entity, to: &lines)
            lines += Array(#","c":"#.utf8)
            Self.appendJSONString(measurement.component, to: &lines)
            lines += Array(#","d":""#.utf8) + Array(measurement.digest.description.utf8) + Array(#"","r":"#.utf8)
            lines += Array(String(measurement.register).utf8) + [UInt8(ascii: "}")]
        }
        try appendLine(Data(lines))
    }

    /// A JSON string: quotes, backslashes and control characters escaped.
    static func appendJSONString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), byte]
            case 0..<0x20: out += Array(String(format: "\\u%04x", byte).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private func appendLine(_ encoded: Data) throws {
        var line = encoded
        line.append(UInt8(ascii: "\n"))
        if appendFD < 0 {
            appendFD = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard appendFD >= 0 else { throw JournalError("cannot open \(path): \(String(cString: strerror(errno)))") }
        }
        let written = line.withUnsafeBytes { write(appendFD, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(appendFD) == 0 else {
            let reason = String(cString: strerror(errno))
            closeAppendFD()
            throw JournalError("cannot append to \(path): \(reason)")
        }
    }

    struct JournalError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// The kernel's id of the current host boot; a new value means the host rebooted.
public enum HostBoot {
    public static func currentID() -> String {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown"
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
