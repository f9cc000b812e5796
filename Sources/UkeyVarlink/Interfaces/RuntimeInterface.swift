extension VarlinkInterface {
    public static let runtime = VarlinkInterface(
        name: "io.ukey.Runtime",
        description: """
            # Run-time trust: the per-VM application whitelist of the policy. A VM that is
            # not trusted in this boot gets deny (run-time trust rests on boot-time trust).
            interface io.ukey.Runtime

            type ExecItem (vm: string, path: string, digest: string)

            type ExecResult (decision: string, rule: ?string, reason: ?string)

            # decision is allow or deny.
            method CheckExec(vm: string, path: string, digest: string) -> (
              decision: string,
              rule: ?string,
              reason: ?string
            )

            # The same for many files at once; results are in the order of items. generation
            # moves whenever the policy, the trusted VMs or the mode changes (an exec guard
            # drops its cache then; an empty batch asks for it alone); onTimeout is what a
            # guard of vm (else of the first item's VM) answers when it cannot ask in time: the
            # policy's on-timeout for that VM, else deny when enforcing and allow in audit mode.
            # tag (at most 64 characters) comes back as given: a guard on a virtio-serial port,
            # where a late reply to an abandoned call can still arrive, matches replies by it.
            # On a VM's guard channel the VM is the channel's: vm may be left out, and naming
            # another VM is PermissionDenied.
            method CheckExecBatch(items: []ExecItem, vm: ?string, tag: ?string) -> (results: []ExecResult, generation: int, onTimeout: string, interpreters: string, tag: ?string)

            # The fingerprints of vm's allowed SHA-256 entries, for its exec guard: each the
            # first 16 bytes of SHA-256("ukey-exec-fingerprint-v1" NUL vm NUL path NUL digest),
            # where digest is the file's 32-byte SHA-256; fingerprints is their concatenation in
            # base64, at most 32768 (limit, the default) from offset, of total, in no order.
            # available is false, and the set empty, unless vm is trusted in this boot, the mode
            # enforces and allowed execs are not recorded: then a guard asks CheckExecBatch
            # about every file. A guard allows a file whose fingerprint is in the set and asks
            # about any other; it drops the set when generation moves. Records nothing.
            method AllowedFingerprints(vm: string, offset: ?int, limit: ?int) -> (available: bool, total: int, fingerprints: string, generation: int)

            # An exec guard (ukey-guard) says it started or is stopping (event: start or stop),
            # for the audit log: while no guard runs, the kernel lets every exec through. gaps
            # names what the guard could not close and was told to accept ("memfd-exec",
            # "user-namespaces"). A start called with more holds the call open for the guard's
            # life (one reply, continues): when its connection closes with no stop said first,
            # ukeyd records the guard lost. On a guest's channel the vm is the channel's.
            method GuardEvent(vm: string, event: string, mounts: []string, gaps: ?[]string) -> (generation: int)

            """
    )
}
