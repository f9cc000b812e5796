import Foundation

/// A child process a test starts and kills with SIGKILL at a moment of its choosing: the crash
/// tests' way to stop a writer at a random point. Only this child is ever signalled, by its PID.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: the Process and Pipe are touched only from the test that owns this object.
    let process = Process()
    private let stdoutPipe = Pipe()

    public init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = stdoutPipe
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }

    /// SIGKILL, then wait for it, so nothing it does can land after this returns.
    public func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Everything the child wrote to stdout (call after it has exited).
    public func collectStdout() -> String {
        String(decoding: stdoutPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }
}

extension ChildProcess {
    /// Whether the child ran to its own exit with status 0 (rather than being killed).
    public var exitedNormally: Bool {
        process.terminationReason == .exit && process.terminationStatus == 0
    }
}
