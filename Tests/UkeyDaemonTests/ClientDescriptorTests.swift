import Foundation
import Testing
import UkeyClient
import UkeyTesting

/// A client must close each socket it opens exactly once. Closing one twice closes whatever
/// another thread opened in between under the same number: in the test process that once made a
/// sealed store "vanish" and a spawn fail with EBADF. The connection's close is injected here and
/// counted, so a second close is seen every time, not only when it lands in a race window.
@Suite("ukey client: descriptors")
struct ClientDescriptorTests {
    /// Records every descriptor closed, then closes it for real.
    final class CloseLedger: @unchecked Sendable {
        // @unchecked: `closed` is guarded by `lock`.
        private let lock = NSLock()
        private var closedDescriptors: [Int32] = []
        var closed: [Int32] { lock.withLock { closedDescriptors } }
        func close(_ fd: Int32) {
            lock.withLock { closedDescriptors.append(fd) }
            _ = Glibc.close(fd)
        }
    }

    @Test("a failed connect closes its socket exactly once, on every failure path")
    func failedConnectsCloseOnce() throws {
        let directory = try TemporaryDirectory()
        let ledger = CloseLedger()
        for round in 1...2_000 {
            #expect(throws: VarlinkConnection.Failure.self) {
                try VarlinkConnection(path: directory.file("nobody-listens.sock"), closeDescriptor: ledger.close)
            }
            #expect(
                ledger.closed.count == round,
                "round \(round) closed \(ledger.closed.count - round + 1) descriptors"
            )
            if ledger.closed.count != round { break }
        }
        let long = "/" + String(repeating: "x", count: 200)
        let before = ledger.closed.count
        #expect(throws: VarlinkConnection.Failure.self) {
            try VarlinkConnection(path: long, closeDescriptor: ledger.close)
        }
        #expect(
            ledger.closed.count == before + 1,
            "a path that is too long closed \(ledger.closed.count - before) descriptors"
        )
    }

    @Test("a connection that stood closes its socket once, when it goes, and not before")
    func standingConnectionClosesOnce() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("listening.sock")
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(listener >= 0)
        defer { _ = Glibc.close(listener) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0 && listen(listener, 8) == 0)

        let ledger = CloseLedger()
        for _ in 0..<50 {
            do {
                let connection = try VarlinkConnection(path: path, closeDescriptor: ledger.close)
                let whileOpen = ledger.closed.count
                withExtendedLifetime(connection) {
                    #expect(
                        ledger.closed.count == whileOpen,
                        "the standing connection's socket was closed while in use"
                    )
                }
            }
            let accepted = accept(listener, nil, nil)
            if accepted >= 0 { _ = Glibc.close(accepted) }
        }
        #expect(ledger.closed.count == 50, "50 connections closed \(ledger.closed.count) descriptors")
    }
}
