/// `io.ukey.Audit`: reading and verifying the audit log.
public enum Audit {
    public static let interface = APIInterface(
        name: "io.ukey.Audit",
        header: """
            # The tamper-evident audit log (one hash-chained JSON record per line, signed
            # checkpoints). Records are objects: seq, time, type, actor, subject, prev, hash.
            interface io.ukey.Audit
            """,
        types: """
            type RemovedArchive (archive: string, upto: int, head: string, recordedAt: int)
            """,
        methods: [Query.self, Verify.self],
        errors: """
            error AuditUnavailable (reason: string)
            """
    )
}
