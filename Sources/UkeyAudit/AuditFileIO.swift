import Foundation

/// The two system calls the log's durability rests on, as values: the real `write(2)` and
/// `fdatasync(2)` in production, and in tests ones that fail on demand (ENOSPC, EIO), so the
/// paths where the disk refuses are exercised every run rather than only when a disk fills.
public struct AuditFileIO: Sendable {
    /// Like `write(2)`: bytes written, or -1 with `errno` set.
    public var write: @Sendable (Int32, UnsafeRawPointer, Int) -> Int
    /// Like `fdatasync(2)`: 0, or -1 with `errno` set.
    public var sync: @Sendable (Int32) -> Int32

    public init(
        write: @escaping @Sendable (Int32, UnsafeRawPointer, Int) -> Int,
        sync: @escaping @Sendable (Int32) -> Int32
    ) {
        self.write = write
        self.sync = sync
    }

    public static let system = AuditFileIO(write: { Glibc.write($0, $1, $2) }, sync: { fdatasync($0) })
}
