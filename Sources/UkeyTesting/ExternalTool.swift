import Foundation

/// A real peer program that a test runs (tpm2_eventlog, openssl, swtpm...), never a stand-in.
///
/// Where the program is missing the test is skipped with a message naming it, except under CI
/// (`CI=true`), where `make test` must have installed it: there a missing peer fails the test.
public struct ExternalTool: Sendable {
    public let name: String
    public let path: String?

    public init(_ name: String) {
        self.name = name
        self.path = Self.find(name)
    }

    /// True under CI, where every peer must be present.
    public static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Whether a test that needs this tool should run: always under CI (so that a missing tool
    /// fails loudly), elsewhere only when the tool is installed.
    public var shouldRun: Bool { Self.inCI || path != nil }

    /// Why a test is skipped, for the test report.
    public var skipReason: String {
        "\(name) is not installed (make test installs it; under CI=true this test fails instead)"
    }

    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs the tool to completion and captures its output.
    public func run(_ arguments: [String], stdin: Data? = nil) throws -> Result {
        guard let path else { throw Missing(description: "\(name) is not installed but CI=true requires it") }
        return try Self.run(path, arguments, stdin: stdin)
    }

    public static func run(
        _ executable: String,
        _ arguments: [String],
        stdin: Data? = nil,
        environment: [String: String]? = nil
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        // Read both pipes before waiting, so a chatty child cannot fill a pipe and block.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data()
        nonisolated(unsafe) var errData = Data()
        DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
        group.wait()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self)
        )
    }

    private static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
