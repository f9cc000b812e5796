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

    /// This host boot's journal: the current boot session and its measurements, and those of
    /// earlier sessions whose registers could not be reset.
    struct Contents {
        var boot: String
        var earlier: [Measurement]
        var entries: [Measurement]
    }

    /// One recorded measurement.
    struct Measurement: Sendable {
        var entity: String
        var component: String
        var digest: Digest
        var register: Int
    }

    static let maxEntries = 1_000_000
    let path: String
    /// Kept open between appends (a measurement's append is on the boot path); reopened after
    /// `start` replaces the file.
    private var appendFD: Int32 = -1

    init(runtimeDirectory: String) {
        path = runtimeDirectory + "/boot.journal"
    }

    /// The journal of this host boot, or nil when there is none (or it is from another boot).
    func load(hostBoot: String) -> Contents? {
        guard let data = FileManager.default.contents(atPath: path), data.count < 256 << 20 else { return nil }
        let lines = data.split(separator: UInt8(ascii: "\n"))
        guard let first = lines.first, let header = try? JSONDecoder().decode(Header.self, from: Data(first)),
            header.hostBoot == hostBoot
        else { return nil }
        var contents = Contents(boot: header.boot, earlier: [], entries: [])
        for line in lines.dropFirst().prefix(Self.maxEntries) {
            if let marker = try? JSONDecoder().decode(ResetMarker.self, from: Data(line)) {
                contents.earlier += contents.entries
                contents.entries = []
                contents.boot = marker.reset
                continue
            }
            if let marker = try? JSONDecoder().decode(VoidMarker.self, from: Data(line)) {
                contents.entries.removeLast(min(max(0, marker.void), contents.entries.count))
                continue
            }
            // A line cut by a crash mid-append was never acknowledged: stop there.
            guard let entry = try? JSONDecoder().decode(Entry.self, from: Data(line)), let digest = try? Digest(parsing: entry.d),
                (0..<ExpectedSet.registerCount).contains(entry.r)
            else { break }
            contents.entries.append(Measurement(entity: entry.e, component: entry.c, digest: digest, register: entry.r))
        }
        return contents
    }

    /// Withdraws the last `count` measurements: their extends failed, so they never happened.
    func appendVoid(count: Int) throws {
        try appendLine(try JSONEncoder().encode(VoidMarker(void: count)))
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
