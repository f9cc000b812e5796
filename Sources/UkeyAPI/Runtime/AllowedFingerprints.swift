extension Runtime {
    /// The fingerprints of a VM's allowed SHA-256 entries, a page at a time, for its exec guard:
    /// a file whose fingerprint is in the set may run without a call.
    public enum AllowedFingerprints: APIMethod {
        public static let name = "io.ukey.Runtime.AllowedFingerprints"
        public static let role: Role? = .hypervisor
        /// 512 KiB of fingerprints a reply (about 700 KB of base64).
        public static let maxPage = 32_768
        public static let idl = """
            # The fingerprints of vm's allowed SHA-256 entries, for its exec guard: each the
            # first 16 bytes of SHA-256("ukey-exec-fingerprint-v1" NUL vm NUL path NUL digest),
            # where digest is the file's 32-byte SHA-256; fingerprints is their concatenation in
            # base64, at most 32768 (limit, the default) from offset, of total, in no order.
            # available is false, and the set empty, unless vm is trusted in this boot, the mode
            # enforces and allowed execs are not recorded: then a guard asks CheckExecBatch
            # about every file. A guard allows a file whose fingerprint is in the set and asks
            # about any other; it drops the set when generation moves. Records nothing (a call
            # refused for its parameters is an invalid-call record, as for every method).
            method AllowedFingerprints(vm: string, offset: ?int, limit: ?int) -> (available: bool, total: int, fingerprints: string, generation: int)
            """

        public struct Request: APIMessage, Equatable {
            public var vm: String
            public var offset: Int?
            public var limit: Int?

            public init(vm: String, offset: Int? = nil, limit: Int? = nil) {
                self.vm = vm
                self.offset = offset
                self.limit = limit
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(vm, "vm", max: FieldLimits.name)
                guard (offset ?? 0) >= 0 else { throw .invalidParameter("offset") }
                guard (1...AllowedFingerprints.maxPage).contains(limit ?? AllowedFingerprints.maxPage) else {
                    throw .invalidParameter("limit")
                }
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var available: Bool
            public var total: Int
            /// The fingerprints' concatenation (16 bytes each).
            public var fingerprints: Base64Bytes
            public var generation: UInt64

            public init(available: Bool, total: Int, fingerprints: [UInt8], generation: UInt64) {
                self.available = available
                self.total = total
                self.fingerprints = Base64Bytes(fingerprints)
                self.generation = generation
            }
        }
    }
}
