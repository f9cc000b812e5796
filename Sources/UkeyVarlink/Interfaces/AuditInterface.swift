extension VarlinkInterface {
    public static let audit = VarlinkInterface(
        name: "io.ukey.Audit",
        description: """
            # The tamper-evident audit log (one hash-chained JSON record per line, signed
            # checkpoints). Records are objects: seq, time, type, actor, subject, prev, hash.
            interface io.ukey.Audit

            # Records with seq >= since (default 1), at most limit (1-1000, default 100),
            # optionally of one type; next is the seq to ask for next. Called with more,
            # it keeps streaming new records as they become durable.
            method Query(since: ?int, limit: ?int, type: ?string) -> (records: []object, next: int)

            # Checks every record's hash, seq and chain link, every checkpoint's signature,
            # and that the log reaches the checkpoint sealed in the token. firstBad is the
            # position of the first record that fails.
            method Verify() -> (
              ok: bool,
              count: int,
              checkpoints: int,
              unsignedTail: int,
              firstBad: ?int,
              reason: ?string
            )

            error AuditUnavailable (reason: string)

            """
    )
}
