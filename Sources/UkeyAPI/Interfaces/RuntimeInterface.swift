/// `io.ukey.Runtime`: the application whitelist, on top of boot-time trust.
public enum Runtime {
    public static let interface = APIInterface(
        name: "io.ukey.Runtime",
        header: """
            # Run-time trust: the per-VM application whitelist of the policy. A VM that is
            # not trusted in this boot gets deny (run-time trust rests on boot-time trust).
            interface io.ukey.Runtime
            """,
        types: """
            # vm: required but on a VM's guard channel, where it is the channel's.
            type ExecItem (vm: ?string, path: string, digest: string)

            type ExecResult (decision: string, rule: ?string, reason: ?string)
            """,
        methods: [CheckExec.self, CheckExecBatch.self, AllowedFingerprints.self, GuardEvent.self],
        errors: ""
    )
}
