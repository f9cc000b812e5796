import Foundation
import Testing
import UkeyTesting
import UkeyVarlink

/// The review's race: two LoadPolicy calls sent at once on two connections, a newer version and
/// an older one (both above the version in force). Before the fix both passed the version check
/// and the older one could be adopted last, in 8 of 10 trials, and stayed in force after a restart.
@Suite("ukeyd: policy rollback under concurrent loads")
struct PolicyRollbackRaceTests {
    @Test("v+2 and v+1 sent at once, ten times: the newest always stays in force, also after a restart")
    func concurrentLoadsCannotRollBack() throws {
        let f = try DaemonFixture()
        var version = 1
        for trial in 1...10 {
            let newer = f.policyText.replacingOccurrences(of: "version: 1", with: "version: \(version + 2)")
            let older = f.policyText.replacingOccurrences(of: "version: 1", with: "version: \(version + 1)")
            let calls = try [(newer, f.sign(newer)), (older, f.sign(older))]
            let outcomes = OutcomeList()
            let daemon = f.daemon
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                let (text, signature) = calls[index]
                do {
                    _ = try daemon.connect().call(
                        "io.ukey.Admin.LoadPolicy",
                        ["policy": .string(text), "signature": .string(signature)]
                    )
                    outcomes.add(index, "loaded")
                } catch {
                    outcomes.add(index, "\(error)")
                }
            }
            version += 2
            let inForce = try f.daemon.call("io.ukey.Admin.Status")["policyVersion"]
            #expect(inForce == .int(version), "trial \(trial): \(outcomes.all)")
            // The newer one always loads; the older one loads only if it came first, else it is
            // refused as a rollback.
            #expect(outcomes.all[0] == "loaded", "trial \(trial): \(outcomes.all)")
            if let refusal = outcomes.all[1], refusal != "loaded" {
                #expect(refusal.contains("PolicyRejected") && refusal.contains("version"), "\(refusal)")
            }
        }
        f.daemon.stop()
        try f.daemon.start()
        #expect(try f.daemon.call("io.ukey.Admin.Status")["policyVersion"] == .int(version))
    }
}

/// Results from concurrent calls, by index.
final class OutcomeList: @unchecked Sendable {
    // @unchecked: `items` is guarded by `lock`.
    private let lock = NSLock()
    private var items: [Int: String] = [:]
    func add(_ index: Int, _ outcome: String) { lock.withLock { items[index] = outcome } }
    var all: [Int: String] { lock.withLock { items } }
}
