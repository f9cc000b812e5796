import Foundation
import Synchronization
import UkeyVarlink

/// The guard at the far end of one VM's channel, as ukeyd hears it: a guard in a guest asks at
/// least once a second (an empty CheckExecBatch for the generation), so a channel that falls
/// silent for `GuardRegistry.silence`, or closes, while its guard runs means the guard is gone.
/// A guard that says stop (GuardEvent) is not lost; one that asks again after a loss runs again.
final class ChannelGuard: Sendable {
    let key: GuardRegistry.Key
    let registry: GuardRegistry
    private let lastHeard = Mutex<Date?>(nil)

    init(vm: String, registry: GuardRegistry) {
        key = GuardRegistry.Key(vm: vm, via: .channel, pid: 0)
        self.registry = registry
    }

    /// A call came on the channel (before it is answered).
    func heard(_ call: VarlinkCall) {
        lastHeard.withLock { $0 = Date() }
        switch call.method {
        case "io.ukey.Runtime.GuardEvent":
            break  // its answer updates the registry
        case "io.ukey.Runtime.CheckExec", "io.ukey.Runtime.CheckExecBatch":
            if registry.state(key) != .running { registry.started(key) }
        default:
            break
        }
    }

    /// Why the guard is lost, when it just became so by silence; nil otherwise.
    func silent() -> String? {
        guard let heard = lastHeard.withLock({ $0 }), Date().timeIntervalSince(heard) > GuardRegistry.silence else {
            return nil
        }
        let reason = "nothing heard on its channel for \(Int(GuardRegistry.silence)) s"
        return registry.lost(key, reason: reason) ? reason : nil
    }

    /// Why the guard is lost now that its channel closed; nil when it was not running.
    func closed() -> String? {
        let reason = "its channel closed (the VM stopped, or QEMU closed it) without a stop"
        return registry.lost(key, reason: reason) ? reason : nil
    }
}
