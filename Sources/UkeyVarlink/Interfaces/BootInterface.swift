extension VarlinkInterface {
    public static let boot = VarlinkInterface(
        name: "io.ukey.Boot",
        description: """
            # Boot-phase trust: every entity is measured before its parent loads it, and is
            # trusted only when its digests match the policy and its parent was trusted
            # (the paper's Theorem 1). Digests are "<alg>:<lowercase hex>".
            interface io.ukey.Boot

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

            # Measures one component (hypervisor role). Give its digest, or a path for ukeyd
            # to hash; with neither, ukeyd hashes the file the policy names. verdict is the
            # entity's state after this measurement (pending, trusted, untrusted); load is
            # whether the hypervisor may load the component. Measurements pipelined on one
            # connection are taken in the order written (sharing a batch) and answered in that
            # order; a call after them on the connection sees their effect. hold (with path)
            # names the VM whose start this is: until Started or Release of that VM, an open of
            # path that finds another file than the one hashed, or the file changed, is refused
            # by the kernel and recorded (open-refused); a path someone other than root could
            # redirect is refused (CannotHash). A writable component (the VM's own disk) is
            # judged against the state sealed at the VM's last stop: another is reason
            # "changed-since-stop". cached: the digest is the one hashed earlier in this host
            # boot from the same file, its identity (device, inode, size, mtime, ctime,
            # generation) unchanged since; the measurement is made and recorded all the same.
            method Measure(
              entity: string,
              component: string,
              digest: ?string,
              path: ?string,
              session: ?string,
              hold: ?string
            ) -> (
              verdict: string,
              match: bool,
              load: bool,
              reason: ?string,
              register: int,
              eventIndex: int,
              digest: string,
              cached: ?bool
            )

            # The chain of the current boot.
            method Chain() -> (bootId: string, mode: string, entities: []Entity)

            # A signed quote of the registers (all used ones when registers is absent).
            # nonce, quote and signature are base64; certificate (the attestation key's, issued by
            # the token-keys sub-CA), chain (that sub-CA's, issued by the root CA) and
            # attestationKey (the same key alone) are PEM. format "ukey-v1": quote is
            # docs/quote-format.md, signature DER (ECDSA or SM2). format "tpm2": quote is TPMS_ATTEST,
            # signature a TPMT_SIGNATURE, as tpm2_checkquote -m/-s read them. algorithm
            # "ecdsa-p256-sha256" or "sm2-sm3" says how it is signed; a verifier takes the
            # algorithm from the certificate, not from here. bank: the register bank quoted,
            # sha256 (the default) or another the registers have (sm3 with an SM3 bank; a TPM
            # quotes sha256 only); another is an InvalidParameter "bank".
            method Quote(nonce: string, registers: ?[]int, bank: ?string) -> (
              quote: string,
              signature: string,
              certificate: string,
              chain: string,
              attestationKey: string,
              format: string,
              algorithm: string
            )

            # The TCG PC Client crypto-agile event log of this boot, base64.
            method EventLog() -> (format: string, data: string)

            # Starts a new boot session (admin role): registers zeroed, chain reset.
            method Reset() -> (bootId: string)

            error UnknownEntity (entity: string)
            error UnknownComponent (entity: string, component: string)
            error NoPolicy ()
            error CannotHash (path: string, reason: string)
            # A writable component sealed at a stop (or accepted): what it held at its start,
            # and now.
            type SealedState (component: string, previous: string, digest: string)

            # A writable component not sealed at a stop, and why: its next start is refused
            # (changed-since-stop) unless it holds its old seal again, or is accepted.
            type UnsealedState (component: string, reason: string)

            # A VM stopped (hypervisor role; the libvirt hook on release end). The entity and what
            # it loaded go back to pending and are measured afresh on the next start; one found
            # untrusted in this boot stays untrusted (state "untrusted", released empty), but for
            # changed-since-stop, which its seal goes on refusing. When its start was trusted and
            # its QEMU came up on the measured files (Started), each writable component is
            # hashed again and sealed, durably, before this answers.
            method Release(entity: string) -> (
              released: []string,
              state: string,
              reason: ?string,
              sealed: ?[]SealedState,
              unsealed: ?[]UnsealedState
            )

            # A VM's QEMU has opened what it loads (hypervisor role; the libvirt hook on started
            # begin): the files measured with hold for it are no longer held. held: how many.
            # Its writable state will be sealed at its release, unless an open of a held file
            # was refused. phase "begin": a new start of the VM begins (before the gate
            # measures); what an earlier attempt held is let go, and nothing else.
            method Started(entity: string, phase: ?string) -> (held: int)

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

            # Every VM with writable components, or the one named (admin role).
            method States(entity: ?string, hash: ?bool) -> (vms: []VmState)

            # Seals a stopped VM's writable state as it is now (admin role), after a stop ukeyd
            # did not hear of, or a change made on purpose; audited with both digests and the
            # uid. component: one of them (default: all); path: the file (default: the one
            # last measured, else the seal's, else the policy's). A VM refused as
            # changed-since-stop in this boot is released (released). A running VM is refused.
            method AcceptState(entity: string, component: ?string, path: ?string) -> (
              sealed: []SealedState,
              released: []string
            )

            error StateNotAccepted (entity: string, reason: string)

            # This host boot recorded as many measurements as the journal may hold: nothing is
            # forgotten to make room, so nothing more is measured until a new boot.
            error JournalFull (limit: int, reason: string)

            """
    )
}
