/// How much the daemon records beyond what it always records (architecture.md section 6).
public struct AuditSettings: Sendable, Hashable {
    /// Which allowed executions are recorded; denials always are.
    public enum ExecAllows: String, Sendable, Hashable, CaseIterable {
        case all, sampled, none
    }

    public var execAllows: ExecAllows = .none
    /// With `sampled`, one allowed execution in this many is recorded.
    public var execAllowSample = 100
    public var checkpointEvery = 1000
    public var checkpointSeconds = 60
    /// Past this many bytes the log is rotated (archived, and a new file continues its chain);
    /// 0: never.
    public var maxSize = 64 << 20
    /// Where a copy of every record goes off the host (`forward`), if anywhere; `forward-socket`
    /// names the collector's socket when it is not the destination's usual one.
    public var forward: String?
    public var forwardSocket: String?
    /// Retention: keep at most this many archives (0: any number), and the archives with the
    /// current file within this many bytes (0: any size). See `AuditRetention`.
    public var keepArchives = 0
    public var maxTotal = 0
    /// The smallest `max-size` accepted (a rotation costs two signatures and some fsyncs).
    public static let minMaxSize = 64 << 10

    public init() {}
}
