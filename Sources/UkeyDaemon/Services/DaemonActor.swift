/// The executor of the state whose updates must be ordered together: the boot chain, its journal
/// and registers, and the policy in force that judges them. One isolation domain for both, so a
/// policy reload and a measurement see each other whole; state that stands alone (sessions, the
/// token slot, the audit log) is behind locks of its own and never waits here.
@globalActor
public actor DaemonActor {
    public static let shared = DaemonActor()
}
