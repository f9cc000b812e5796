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

    private var consumed = Data()

    /// Blocks until the child has written a first full line to stdout (or closed it), so a test
    /// can place its kill relative to the child's progress rather than to the clock.
    public func waitForFirstLine() {
        while !consumed.contains(UInt8(ascii: "\n")) {
            let chunk = stdoutPipe.fileHandleForReading.availableData
            if chunk.isEmpty { return }
            consumed.append(chunk)
        }
    }

    /// Everything the child wrote to stdout (call after it has exited).
    public func collectStdout() -> String {
        String(decoding: consumed + stdoutPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }
}

extension ChildProcess {
    /// Whether the child ran to its own exit with status 0 (rather than being killed).
    public var exitedNormally: Bool {
        process.terminationReason == .exit && process.terminationStatus == 0
    }
}
