extension Audit {
    /// Verifies the whole log with the audit key and the sealed checkpoint.
    public enum Verify: APIMethod {
        public static let name = "io.ukey.Audit.Verify"
        public static let role: Role? = .admin
        public static let idl = """
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
            """

        public typealias Request = Empty

        /// An archive retention removed, as the record of its removal has it.
        public struct RemovedArchive: APIMessage, Equatable {
            public var archive: String
            public var upto: Int
            public var head: String
            public var recordedAt: Int

            public init(archive: String, upto: Int, head: String, recordedAt: Int) {
                self.archive = archive
                self.upto = upto
                self.head = head
                self.recordedAt = recordedAt
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var ok: Bool
            public var count: Int
            public var checkpoints: Int
            public var unsignedTail: Int
            public var firstBad: Int?
            public var reason: String?
            public var files: [String]
            public var removedByRetention: [RemovedArchive]

            public init(
                ok: Bool,
                count: Int,
                checkpoints: Int,
                unsignedTail: Int,
                firstBad: Int?,
                reason: String?,
                files: [String],
                removedByRetention: [RemovedArchive]
            ) {
                self.ok = ok
                self.count = count
                self.checkpoints = checkpoints
                self.unsignedTail = unsignedTail
                self.firstBad = firstBad
                self.reason = reason
                self.files = files
                self.removedByRetention = removedByRetention
            }
        }
    }
}
