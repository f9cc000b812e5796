import CFanotify
import Glibc

/// SIGTERM and SIGINT as a descriptor the guard's loop polls beside its fanotify group, so a
/// stop is taken between events (the stop is audited and no exec is left held) without a system
/// call of its own per event.
public enum StopSignals {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Blocks the signals in this thread (call it before any other thread starts, so every thread
    /// inherits the mask and none takes them) and returns a signalfd that becomes readable when
    /// one is pending.
    public static func descriptor() throws(Failure) -> Int32 {
        var stopping = sigset_t()
        sigemptyset(&stopping)
        sigaddset(&stopping, SIGTERM)
        sigaddset(&stopping, SIGINT)
        pthread_sigmask(SIG_BLOCK, &stopping, nil)
        let fd = signalfd(-1, &stopping, Int32(SFD_CLOEXEC))
        guard fd >= 0 else { throw Failure(description: "signalfd: \(String(cString: strerror(errno)))") }
        return fd
    }
}
