/// `io.ukey.Boot`: measure, then decide.
public enum Boot {
    public static let interface = APIInterface(
        name: "io.ukey.Boot",
        header: """
            # Boot-phase trust: every entity is measured before its parent loads it, and is
            # trusted only when its digests match the policy and its parent was trusted
            # (the paper's Theorem 1). Digests are "<alg>:<lowercase hex>".
            interface io.ukey.Boot
            """,
        types: """
            # An entity of the boot chain and where it stands in this boot.
            type Entity (
              name: string,
              parent: string,
              kind: string,
              state: string,
              reason: ?string,
              register: int,
              measured: [string]string,
              # The components the policy expects, in its order: what a measurer asks about.
              components: []string
            )

            # A writable component sealed at a stop (or accepted): what it held at its start,
            # and now.
            type SealedState (component: string, previous: string, digest: string)

            # A writable component not sealed at a stop, and why: its next start is refused
            # (changed-since-stop) unless it holds its old seal again, or is accepted.
            type UnsealedState (component: string, reason: string)

            # A VM's writable component as sealed (admin role): base is the policy's first
            # state, expected what the next start must find (the seal, else base); by is
            # "release" or "accept" (uid: who accepted). With hash, current is what the file
            # holds now and matches whether that is expected (problem: why it was not hashed).
            type ComponentState (
              component: string,
              path: ?string,
              base: string,
              expected: string,
              sealed: ?string,
              sealedAt: ?string,
              by: ?string,
              boot: ?string,
              uid: ?int,
              current: ?string,
              matches: ?bool,
              problem: ?string
            )

            type VmState (entity: string, state: string, reason: ?string, components: []ComponentState)
            """,
        methods: [
            Measure.self, Chain.self, Quote.self, EventLog.self, Reset.self, Release.self, Started.self, States.self,
            AcceptState.self, EntityState.self,
        ],
        errors: """
            error UnknownEntity (entity: string)
            error UnknownComponent (entity: string, component: string)
            error NoPolicy ()
            error CannotHash (path: string, reason: string)
            error StateNotAccepted (entity: string, reason: string)

            # This host boot recorded as many measurements as the journal may hold: nothing is
            # forgotten to make room, so nothing more is measured until a new boot.
            error JournalFull (limit: int, reason: string)
            """
    )
}
