import Foundation

/// A private (0700) directory that lives for one test and is removed after it.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "ukey-test") throws {
        var template = Array("\(NSTemporaryDirectory())/\(label).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: label])
        }
        // As the kernel names it (NSTemporaryDirectory ends in '/': no "//" in the paths).
        path = URL(fileURLWithPath: String(cString: made)).standardizedFileURL.path
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    public func write(_ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: file(name)))
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The root of this package's checkout, for tests that read `policies/` or run built binaries.
public enum PackagePaths {
    public static func root(from filePath: String = #filePath) -> String {
        var url = URL(fileURLWithPath: filePath).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.path
            }
            url.deleteLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath
    }

    /// A product built next to the running test bundle (`swift test` builds the executables too).
    public static func builtProduct(_ name: String) -> String {
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while url.path != "/" {
            let candidate = url.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            url.deleteLastPathComponent()
        }
        return "\(root())/.build/debug/\(name)"
    }
}
