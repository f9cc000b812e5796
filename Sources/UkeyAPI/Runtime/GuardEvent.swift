import UkeyCodec

extension Runtime {
    /// An exec guard says it started or is stopping, so the audit log shows when enforcement was
    /// on: while no guard runs, the kernel lets every exec through.
    public enum GuardEvent: GuestMethod {
        public static let name = "io.ukey.Runtime.GuardEvent"
        public static let role: Role? = .hypervisor
        /// What a guard may say it could not close.
        public static let knownGaps: Set<String> = ["memfd-exec", "user-namespaces"]
        public static let idl = """
            # An exec guard (ukey-guard) says it started or is stopping (event: start or stop),
            # for the audit log: while no guard runs, the kernel lets every exec through. gaps
            # names what the guard could not close and was told to accept ("memfd-exec",
            # "user-namespaces"). A start called with more holds the call open for the guard's
            # life (one reply, continues): when its connection closes with no stop said first,
            # ukeyd records the guard lost. vm is required but on a guest's channel, where it is
            # the channel's.
            method GuardEvent(vm: ?string, event: string, mounts: []string, gaps: ?[]string) -> (generation: int)
            """

        public struct Request: APIMessage, Equatable {
            /// Required on ukeyd's socket; on a guest's channel, the channel's VM.
            public var vm: String?
            /// start or stop.
            public var event: String
            /// The mounts the guard marks (absolute paths).
            public var mounts: [String]
            /// What the guard could not close and was told to accept.
            public var gaps: [String]?

            public init(vm: String?, event: String, mounts: [String], gaps: [String]? = nil) {
                self.vm = vm
                self.event = event
                self.mounts = mounts
                self.gaps = gaps
            }

            public func validate() throws(APIError) {
                guard vm != nil else { throw .invalidParameter("vm") }
                try FieldLimits.check(vm, "vm", max: FieldLimits.name)
                try FieldLimits.check(event, "event", in: ["start", "stop"])
                try FieldLimits.check(mounts, "mounts", max: FieldLimits.text, count: 4096)
                guard mounts.allSatisfy({ $0.hasPrefix("/") }) else { throw .invalidParameter("mounts") }
                guard (gaps ?? []).allSatisfy(GuardEvent.knownGaps.contains) else { throw .invalidParameter("gaps") }
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var generation: UInt64

            public init(generation: UInt64) {
                self.generation = generation
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            var subject: [String: JSONValue] = [
                "vm": .string(request.vm ?? ""), "event": .string(request.event),
                "mounts": .string(request.mounts.joined(separator: ",")),
            ]
            if let gaps = request.gaps, !gaps.isEmpty { subject["gaps"] = .string(gaps.joined(separator: ",")) }
            return [AuditRecord("guard", subject, outcome)]
        }
    }
}
