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
            # redirect is refused (CannotHash).
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
              digest: string
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
            # A VM stopped (hypervisor role; the libvirt hook on release end). The entity and what
            # it loaded go back to pending and are measured afresh on the next start; one found
            # untrusted in this boot stays untrusted (state "untrusted", released empty).
            method Release(entity: string) -> (released: []string, state: string, reason: ?string)

            # A VM's QEMU has opened what it loads (hypervisor role; the libvirt hook on started
            # begin): the files measured with hold for it are no longer held. held: how many.
            method Started(entity: string) -> (held: int)

            # This host boot recorded as many measurements as the journal may hold: nothing is
            # forgotten to make room, so nothing more is measured until a new boot.
            error JournalFull (limit: int, reason: string)

            """
    )
}
