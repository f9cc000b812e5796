import Foundation
import UkeyCodec
import UkeyCore

/// The measurements of the current host boot, kept in the runtime directory (`/run/ukey`, a tmpfs
/// emptied when the host reboots). Registers and chain state are per boot: a restart of ukeyd
/// alone must not reset them, or an attacker who crashes the daemon could measure again. On start
/// ukeyd replays this journal; a new host boot (different kernel boot id) starts a new one.
///
/// Format: JSON lines (see `Line`); the first is `{"boot":…,"hostBoot":…}`, then one `{"c":…,"d":…,"e":…,"r":…}` per
/// measurement (with the register it extended, which a later policy may no longer say), appended
/// and fsynced before the measurement is answered. With registers that cannot be reset (a TPM's
/// PCRs) a `Boot.Reset` appends `{"reset":<new boot>}` instead of starting afresh: the earlier
/// measurements are still in the PCRs, so they stay in the event log that explains them.
package final class BootJournal {
    /// One line of the journal, as read by the one strict JSON reader (a duplicate key or any
    /// member the line's kind does not have is a line that cannot be read, so ukeyd stops):
    /// the header `{"boot","hostBoot"}`; a measurement `{"c","d","e","r"}`; a reset
    /// `{"reset"}` (a new boot session); a release `{"release"}` (an entity's VM stopped after
    /// the measurements before it); a void `{"void"}` (the last n measurements were not taken:
    /// the token refused their extends).
    package enum Line: Equatable {
        case header(hostBoot: String, boot: String)
        case measurement(entity: String, component: String, digest: String, register: Int)
        case reset(boot: String)
        case release(entity: String)
        case void(count: Int)

        package init?(_ bytes: some Collection<UInt8>) {
            guard let object = try? JSONReader.parse(bytes).objectValue else { return nil }
            func string(_ key: String) -> String? { object[key]?.stringValue }
            func integer(_ key: String) -> Int? { if case .int(let value)? = object[key] { value } else { nil } }
            switch Set(object.keys) {
            case ["hostBoot", "boot"]:
                guard let hostBoot = string("hostBoot"), let boot = string("boot") else { return nil }
                self = .header(hostBoot: hostBoot, boot: boot)
            case ["e", "c", "d", "r"]:
                guard let entity = string("e"), let component = string("c"), let digest = string("d"), let register = integer("r") else { return nil }
                self = .measurement(entity: entity, component: component, digest: digest, register: register)
            case ["reset"]:
                guard let boot = string("reset") else { return nil }
                self = .reset(boot: boot)
            case ["release"]:
                guard let entity = string("release") else { return nil }
                self = .release(entity: entity)
            case ["void"]:
                guard let count = integer("void") else { return nil }
                self = .void(count: count)
            default:
                return nil
            }
        }

        /// The line's bytes (without the newline), written with the one JSON writer.
        package var bytes: [UInt8] {
            let value: JSONValue = switch self {
            case .header(let hostBoot, let boot): ["hostBoot": .string(hostBoot), "boot": .string(boot)]
            case .measurement(let entity, let component, let digest, let register):
                ["e": .string(entity), "c": .string(component), "d": .string(digest), "r": .int(register)]
            case .reset(let boot): ["reset": .string(boot)]
            case .release(let entity): ["release": .string(entity)]
            case .void(let count): ["void": .int(count)]
            }
            return JSONWriter.write(value)
        }
    }

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
    static let maxEntries = DaemonServices.defaultMaxMeasurements
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
        guard case .header(let journalHostBoot, let boot)? = Line(first) else {
            throw JournalError("\(path): its first line is not a journal header; ukeyd will not start on a journal it cannot read (restart the host to begin a new boot)")
        }
        guard journalHostBoot == hostBoot else { return nil }
        var contents = Contents(boot: boot, earlier: [], entries: [])
        for (number, raw) in lines.enumerated().dropFirst() {
            let unreadable = JournalError("\(path) line \(number + 1) is not a measurement; ukeyd will not start on a journal it cannot read whole (restart the host to begin a new boot)")
            switch Line(raw) {
            case .reset(let boot)?:
                contents.earlier += contents.entries
                contents.entries = []
                contents.releases = []
                contents.boot = boot
            case .release(let entity)?:
                contents.releases.append((contents.entries.count, entity))
            case .void(let count)?:
                contents.entries.removeLast(min(max(0, count), contents.entries.count))
            case .measurement(let entity, let component, let text, let register)?:
                guard let digest = try? Digest(parsing: text), (0..<ExpectedSet.registerCount).contains(register) else { throw unreadable }
                contents.entries.append(Measurement(entity: entity, component: component, digest: digest, register: register))
                guard contents.earlier.count + contents.entries.count <= limit else {
                    throw JournalError("\(path) holds more than \(limit) measurements ([boot] max-measurements); ukeyd will not start on a journal it cannot read whole: raise the limit or restart the host")
                }
            case .header?, nil:
                throw unreadable
            }
        }
        return contents
    }

    /// Withdraws the last `count` measurements: their extends failed, so they never happened.
    func appendVoid(count: Int) throws {
        try appendLine(Line.void(count: count).bytes)
    }

    /// Records a release durably, before the chain forgets the entity's measurements.
    func appendRelease(entity: String) throws {
        try appendLine(Line.release(entity: entity).bytes)
    }

    /// Starts a new boot session in this journal, keeping the earlier measurements.
    func appendReset(boot: String) throws {
        try appendLine(Line.reset(boot: boot).bytes)
    }

    /// Starts a new journal for a new boot, replacing any old one.
    func start(hostBoot: String, boot: String) throws {
        let header = Data(Line.header(hostBoot: hostBoot, boot: boot).bytes + [UInt8(ascii: "\n")])
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

    /// Appends measurements durably: one write and one fsync for all of them.
    func append(_ measurements: [Measurement]) throws {
        var lines: [UInt8] = []
        for (index, measurement) in measurements.enumerated() {
            if index > 0 { lines.append(UInt8(ascii: "\n")) }
            lines += Line.measurement(entity: measurement.entity, component: measurement.component, digest: measurement.digest.description, register: measurement.register).bytes
        }
        try appendLine(lines)
    }

    private func appendLine(_ encoded: [UInt8]) throws {
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
