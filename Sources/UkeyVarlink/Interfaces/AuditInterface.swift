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
            # and that the log reaches the checkpoint sealed in the token, in the current file
            # and in every archive it continues, back to the first record: each archive must be
            # in the state directory and end with the record the file after it chains to (one
            # moved away is missing, one cut back is cut short: both fail, naming it), unless a
            # later archive-removed record says retention removed it (listed in
            # removedByRetention, with its last record's seq and hash; the walk stops there).
            # firstBad is the position of the first record that fails; files the files read,
            # newest first; count and checkpoints are over all of them.
            method Verify() -> (
              ok: bool,
              count: int,
              checkpoints: int,
              unsignedTail: int,
              firstBad: ?int,
              reason: ?string,
              files: []string,
              removedByRetention: []RemovedArchive
            )

            type RemovedArchive (archive: string, upto: int, head: string, recordedAt: int)

            error AuditUnavailable (reason: string)

            """
    )
}
