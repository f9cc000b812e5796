#if canImport(Glibc)
import Glibc
#endif

/// Where ukeyctl writes, and whether it may colour what it writes.
enum FileHandleOutput {
    static func standardError(_ text: String) {
        var line = text
        if !line.hasSuffix("\n") { line += "\n" }
        // write(2) rather than the C `stderr` global, which Swift 6 treats as shared mutable state.
        _ = line.utf8CString.withUnsafeBufferPointer { write(STDERR_FILENO, $0.baseAddress, $0.count - 1) }
    }

    /// Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
    static let colorEnabled: Bool = isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil
}

/// ANSI styles for states at a glance.
enum Style: String {
    case green = "32"
    case red = "31"
    case yellow = "33"
    case dim = "2"
    case bold = "1"

    func apply(_ text: String) -> String {
        FileHandleOutput.colorEnabled ? "\u{1B}[\(rawValue)m\(text)\u{1B}[0m" : text
    }
}
