import Foundation
import Synchronization
import Testing
import UkeyPCSC

/// ukeyd crashed in exit when a card handle was released on a pool thread while the main thread
/// ran pcsc-lite's destructor. The lifetime is what keeps calls out of pcsc-lite from then on.
@Suite("PC/SC lifetime: no card call once the process has ended its PC/SC use")
struct PCSCLifetimeTests {
    @Test("end waits for the calls under way, lets no new one in, and says when one outlasts it")
    func endWaitsAndRefuses() async throws {
        let lifetime = PCSCLifetime()
        #expect(lifetime.enter())
        // A call under way for 200 ms: end returns only after it left.
        let left = Mutex<Date?>(nil)
        let call = Thread {
            usleep(200_000)
            left.withLock { $0 = Date() }
            lifetime.leave()
        }
        call.start()
        let started = Date()
        #expect(lifetime.end(waitingAtMost: 5) == 0)
        let ended = Date()
        let leftAt = try #require(left.withLock { $0 })
        #expect(leftAt <= ended, "end returned before the call under way left")
        #expect(ended.timeIntervalSince(started) >= 0.15)
        #expect(lifetime.hasEnded)
        #expect(!lifetime.enter(), "a call came in after the end")

        // A call that outlasts the wait is counted, and the end still returns in time.
        let stuck = PCSCLifetime()
        #expect(stuck.enter())
        let before = Date()
        #expect(stuck.end(waitingAtMost: 0.1) == 1)
        #expect(Date().timeIntervalSince(before) < 2)
    }
}
