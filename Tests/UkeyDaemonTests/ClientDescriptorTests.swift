import Foundation
import Testing
import UkeyClient
import UkeyTesting

/// A client that fails to connect must close its socket once. Closing it twice closes whatever
/// another thread opened in between under the same number: in the test process that once made a
/// sealed store "vanish" and a spawn fail with EBADF.
@Suite("ukey client: descriptors")
struct ClientDescriptorTests {
    final class Probe: @unchecked Sendable {
        // @unchecked: `stop` and `stolen` are guarded by `lock`.
        private let lock = NSLock()
        private var stopFlag = false
        private var stolenCount = 0
        var stopped: Bool { lock.withLock { stopFlag } }
        var stolen: Int { lock.withLock { stolenCount } }
        func stop() { lock.withLock { stopFlag = true } }
        func steal() { lock.withLock { stolenCount += 1 } }
    }

    @Test("failed connections never close a descriptor another thread holds")
    func failedConnectsCloseOnce() throws {
        let directory = try TemporaryDirectory()
        var info = stat()
        #expect(stat("/dev/null", &info) == 0)
        let nullDevice = info.st_rdev
        let probe = Probe()
        let finished = DispatchSemaphore(value: 0)
        let holder = Thread {
            // Opens /dev/null again and again and checks the descriptor is still /dev/null while held.
            while !probe.stopped {
                let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { continue }
                var info = stat()
                for _ in 0..<20 where fstat(fd, &info) != 0 || info.st_rdev != nullDevice {
                    probe.steal()
                    break
                }
                close(fd)
            }
            finished.signal()
        }
        holder.start()
        for _ in 0..<20_000 {
            _ = try? VarlinkConnection(path: directory.file("nobody-listens.sock"))
        }
        probe.stop()
        finished.wait()
        #expect(probe.stolen == 0, "a failed connect closed \(probe.stolen) descriptors it did not own")
    }
}
