/// Splits a byte stream into NUL-terminated varlink messages, with a size limit. Sans-IO: feed it
/// whatever a read returned (one byte, or many messages at once); it returns complete messages.
public struct VarlinkFraming: Sendable {
    /// Default limit for one message (architecture.md section 4): 1 MiB.
    public static let defaultLimit = 1 << 20

    public let limit: Int
    private var buffer: [UInt8] = []
    /// Where to resume looking for a NUL: bytes before it were already scanned.
    private var scanned = 0

    public init(limit: Int = defaultLimit) {
        self.limit = limit
    }

    /// Bytes received but not yet part of a complete message.
    public var pendingCount: Int { buffer.count }

    /// Appends received bytes and returns every message now complete (without its NUL). Throws
    /// once a message grows past the limit without a terminator: the stream cannot be trusted after.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(VarlinkError) -> [[UInt8]] {
        buffer.append(contentsOf: bytes)
        var messages: [[UInt8]] = []
        var start = 0
        var index = scanned
        while index < buffer.count {
            if buffer[index] == 0 {
                guard index - start <= limit else { throw Self.tooLarge(limit) }
                messages.append(Array(buffer[start..<index]))
                start = index + 1
            }
            index += 1
        }
        if start > 0 { buffer.removeFirst(start) }
        scanned = buffer.count
        guard buffer.count <= limit else { throw Self.tooLarge(limit) }
        return messages
    }

    static func tooLarge(_ limit: Int) -> VarlinkError {
        .protocolError("a message exceeds the \(limit)-byte limit")
    }

    /// One message on the wire: its bytes and the NUL terminator.
    public static func frame(_ message: [UInt8]) -> [UInt8] {
        message + [0]
    }
}
