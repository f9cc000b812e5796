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
    /// the header `{"boot","hostBoot"}`; a measurement `{"c","d","e","r"}`, a writable
    /// component's with `"s"` (the sealed state it was judged against, when there was one),
    /// `"p"` (the file hashed, which its release hashes again to seal it) and `"i"` (that file's
    /// `device:inode`); a reset
    /// `{"reset"}` (a new boot session); a release `{"release"}` (an entity's VM stopped after
    /// the measurements before it); a void `{"void"}` (the last n measurements were not taken:
    /// the token refused their extends); a start `{"started"}` (a VM's QEMU came up on the files
    /// measured for it, so what it writes is sealed as its state when it stops).
    package enum Line: Equatable {
        case header(hostBoot: String, boot: String)
        case measurement(
            entity: String,
            component: String,
            digest: String,
            register: Int,
            sealed: String? = nil,
            path: String? = nil,
            file: String? = nil
        )
        case reset(boot: String)
        case release(entity: String)
        case void(count: Int)
        case started(entity: String)

        package init?(_ bytes: some Collection<UInt8>) {
            guard let object = try? JSONReader.parse(bytes).objectValue else { return nil }
            func string(_ key: String) -> String? { object[key]?.stringValue }
            func integer(_ key: String) -> Int? { if case .int(let value)? = object[key] { value } else { nil } }
            let keys = Set(object.keys)
            if keys.isSuperset(of: ["e", "c", "d", "r"]), keys.isSubset(of: ["e", "c", "d", "r", "s", "p", "i"]) {
                guard let entity = string("e"), let component = string("c"), let digest = string("d"),
                    let register = integer("r")
                else { return nil }
                let sealed = string("s")
                let path = string("p")
                let file = string("i")
                guard (sealed != nil) == keys.contains("s"), (path != nil) == keys.contains("p"),
                    (file != nil) == keys.contains("i")
                else { return nil }
                self = .measurement(
                    entity: entity,
                    component: component,
                    digest: digest,
                    register: register,
                    sealed: sealed,
                    path: path,
                    file: file
                )
                return
            }
            switch keys {
            case ["hostBoot", "boot"]:
                guard let hostBoot = string("hostBoot"), let boot = string("boot") else { return nil }
                self = .header(hostBoot: hostBoot, boot: boot)
            case ["reset"]:
                guard let boot = string("reset") else { return nil }
                self = .reset(boot: boot)
            case ["release"]:
                guard let entity = string("release") else { return nil }
                self = .release(entity: entity)
            case ["void"]:
                guard let count = integer("void") else { return nil }
                self = .void(count: count)
            case ["started"]:
                guard let entity = string("started") else { return nil }
                self = .started(entity: entity)
            default:
                return nil
            }
        }

        /// The line's bytes (without the newline), written with the one JSON writer.
        package var bytes: [UInt8] {
            let value: JSONValue =
                switch self {
                case .header(let hostBoot, let boot): ["hostBoot": .string(hostBoot), "boot": .string(boot)]
                case .measurement(let entity, let component, let digest, let register, let sealed, let path, let file):
                    {
                        var line: [String: JSONValue] = [
                            "e": .string(entity), "c": .string(component), "d": .string(digest), "r": .int(register),
                        ]
                        if let sealed { line["s"] = .string(sealed) }
                        if let path { line["p"] = .string(path) }
                        if let file { line["i"] = .string(file) }
                        return .object(line)
                    }()
                case .reset(let boot): ["reset": .string(boot)]
                case .release(let entity): ["release": .string(entity)]
                case .void(let count): ["void": .int(count)]
                case .started(let entity): ["started": .string(entity)]
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
        /// VMs whose QEMU came up on what was measured and that have not been released since.
        var started: Set<String> = []
    }

    /// One recorded measurement.
    struct Measurement: Sendable {
        var entity: String
        var component: String
        var digest: Digest
        var register: Int
        /// A writable component's: the state sealed at its VM's last stop that it was judged
        /// against (nil: none, so the policy's digest), so a restarted ukeyd judges it the same.
        var sealed: Digest? = nil
        /// A writable component's: the file that was hashed, hashed again to seal it at the stop.
        var path: String? = nil
        /// A writable component's: that file's device and inode (`device:inode`): the stop seals
        /// the file the VM ran on, not another renamed over its path meanwhile.
        var file: String? = nil
    }

    /// The most measurements one host boot's journal holds, by default. Past it ukeyd refuses
    /// further measurements (`io.ukey.Boot.JournalFull`): it never forgets one to make room.
    static let maxEntries = DaemonServices.defaultMaxMeasurements
    /// The longest line `append` writes: entity and component names are at most 64 characters,
    /// each escaped to at most 6 bytes, plus a digest and a register; a writable component's line
    /// adds a second digest and a path of at most `maxPathBytes` (those are few: one per disk).
    static let maxLineBytes = 1024
    static let maxPathBytes = 1024
    let path: String
    /// The measurements this journal may hold (settings: `[boot] max-measurements`).
    let limit: Int
    /// A journal larger than its limit allows was not written by this ukeyd: it is refused whole.
    var maxBytes: Int { (limit + 64) * (Self.maxLineBytes + 6 * Self.maxPathBytes) }
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
            throw JournalError(
                "\(path) is \(info.st_size) bytes, more than a journal of \(limit) measurements can be; ukeyd will not start on a journal it cannot read whole (restart the host to begin a new boot)"
            )
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
            throw JournalError(
                "\(path): its first line is not a journal header; ukeyd will not start on a journal it cannot read (restart the host to begin a new boot)"
            )
        }
        guard journalHostBoot == hostBoot else { return nil }
        var contents = Contents(boot: boot, earlier: [], entries: [])
        for (number, raw) in lines.enumerated().dropFirst() {
            let unreadable = JournalError(
                "\(path) line \(number + 1) is not a measurement; ukeyd will not start on a journal it cannot read whole (restart the host to begin a new boot)"
            )
            switch Line(raw) {
            case .reset(let boot)?:
                contents.earlier += contents.entries
                contents.entries = []
                contents.releases = []
                contents.started = []
                contents.boot = boot
            case .release(let entity)?:
                contents.releases.append((contents.entries.count, entity))
                contents.started.remove(entity)
            case .started(let entity)?:
                contents.started.insert(entity)
            case .void(let count)?:
                contents.entries.removeLast(min(max(0, count), contents.entries.count))
            case .measurement(
                let entity,
                let component,
                let text,
                let register,
                let sealedText,
                let measuredPath,
                let file
            )?:
                guard let digest = try? Digest(parsing: text), (0..<ExpectedSet.registerCount).contains(register) else {
                    throw unreadable
                }
                var sealed: Digest?
                if let sealedText {
                    guard let parsed = try? Digest(parsing: sealedText) else { throw unreadable }
                    sealed = parsed
                }
                contents.entries.append(
                    Measurement(
                        entity: entity,
                        component: component,
                        digest: digest,
                        register: register,
                        sealed: sealed,
                        path: measuredPath,
                        file: file
                    )
                )
                // A writable component measured again: a new start, not yet come up.
                if measuredPath != nil { contents.started.remove(entity) }
                guard contents.earlier.count + contents.entries.count <= limit else {
                    throw JournalError(
                        "\(path) holds more than \(limit) measurements ([boot] max-measurements); ukeyd will not start on a journal it cannot read whole: raise the limit or restart the host"
                    )
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

    /// Records durably that a VM's QEMU came up on what was measured for it.
    func appendStarted(entity: String) throws {
        try appendLine(Line.started(entity: entity).bytes)
    }

    /// Starts a new boot session in this journal, keeping the earlier measurements.
    func appendReset(boot: String) throws {
        try appendLine(Line.reset(boot: boot).bytes)
    }

    /// Starts a new journal for a new boot, replacing any old one.
    func start(hostBoot: String, boot: String) throws {
        let header = Data(Line.header(hostBoot: hostBoot, boot: boot).bytes + [UInt8(ascii: "\n")])
        let temporary = path + ".tmp"
        guard
            FileManager.default.createFile(atPath: temporary, contents: header, attributes: [.posixPermissions: 0o600])
        else {
            throw JournalError("cannot create \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            throw JournalError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
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
            lines +=
                Line.measurement(
                    entity: measurement.entity,
                    component: measurement.component,
                    digest: measurement.digest.description,
                    register: measurement.register,
                    sealed: measurement.sealed?.description,
                    path: measurement.path,
                    file: measurement.file
                ).bytes
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
