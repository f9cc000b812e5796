import Foundation
import UkeyPolicy
#if canImport(Glibc)
import Glibc
#endif

/// One line on standard error, redrawn in place while ukeyctl hashes a large file (bytes, rate,
/// time left), as systemd's tools and `qemu-img convert -p` draw theirs: only when standard error
/// is a terminal, only for a file over 256 MiB (a smaller one is hashed in well under a second),
/// at most ten redraws a second, and wiped when the work ends. In a pipe or a log: nothing.
final class ProgressLine {
    static let threshold: Int64 = 256 << 20
    static let interval = Duration.milliseconds(100)

    let label: String
    let started = ContinuousClock.now
    private var lastDrawn: ContinuousClock.Instant?

    private init(label: String) {
        self.label = label
    }

    /// A line for hashing `path`, or nil when none is to be drawn.
    static func hashing(_ path: String, terminal: Bool = isatty(2) == 1) -> ProgressLine? {
        guard terminal, let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int64,
            size > threshold
        else { return nil }
        return ProgressLine(label: "hashing \((path as NSString).lastPathComponent)")
    }

    /// Hashes with the line drawn around it: `body` gets the progress callback.
    static func around<T>(hashing path: String, _ body: (FileDigester.Progress?) throws -> T) rethrows -> T {
        guard let line = hashing(path) else { return try body(nil) }
        defer { line.finish() }
        return try body { done, total in line.update(done: done, total: total) }
    }

    func update(done: Int64, total: Int64) {
        let now = ContinuousClock.now
        if let lastDrawn, now - lastDrawn < Self.interval, done < total { return }
        lastDrawn = now
        let elapsed = Double((now - started).components.seconds) + Double((now - started).components.attoseconds) / 1e18
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var text = "\r\(label): \(Self.bytes(Double(done)))"
        if total > 0 { text += " of \(Self.bytes(Double(total))) (\(done * 100 / total)%)" }
        text += ", \(Self.bytes(rate))/s"
        if total > 0, rate > 0 { text += ", \(Int((Double(total - done) / rate).rounded(.up))) s left" }
        Self.draw(text + "\u{1B}[K")
    }

    /// Wipes the line, so what follows starts on a clean one.
    func finish() {
        if lastDrawn != nil { Self.draw("\r\u{1B}[K") }
    }

    /// Writes to standard error at once (no buffer: a redraw must show when it is made).
    static func draw(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    static func bytes(_ value: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = value
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// The same line while ukeyctl waits for ukeyd on long work it cannot measure from here (ukeyd
/// reading a large allow-list at `policy load`): what it waits for and for how long, redrawn ten
/// times a second from a thread of its own until the answer comes; on a terminal only.
final class WaitingLine: @unchecked Sendable {
    private let label: String
    private let lock = NSLock()
    private var done = false
    private let finished = DispatchSemaphore(value: 0)

    private init(label: String) {
        self.label = label
    }

    /// Runs `body` with the line drawn meanwhile, when `label` is given and standard error is a terminal.
    static func around<T>(_ label: String?, terminal: Bool = isatty(2) == 1, _ body: () throws -> T) rethrows -> T {
        guard let label, terminal else { return try body() }
        let line = WaitingLine(label: label)
        let started = ContinuousClock.now
        Thread.detachNewThread {
            while !line.isDone {
                let elapsed = (ContinuousClock.now - started).components
                let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
                ProgressLine.draw("\r\(line.label), \(String(format: "%.1f", seconds)) s\u{1B}[K")
                Thread.sleep(forTimeInterval: 0.1)
            }
            ProgressLine.draw("\r\u{1B}[K")
            line.finished.signal()
        }
        defer {
            line.markDone()
            line.finished.wait()
        }
        return try body()
    }

    private var isDone: Bool { lock.withLock { done } }
    private func markDone() { lock.withLock { done = true } }
}
