import UkeyCodec

extension Boot {
    /// Seals a VM's writable state as it is now: after a stop ukeyd did not hear of (a host that
    /// lost power), or a change the administrator made on purpose. A running VM is refused: its
    /// state is sealed when it stops.
    public enum AcceptState: APIMethod {
        public static let name = "io.ukey.Boot.AcceptState"
        public static let role: Role? = .admin
        public static let idl = """
            # Seals a stopped VM's writable state as it is now (admin role), after a stop ukeyd
            # did not hear of, or a change made on purpose; audited with both digests and the
            # uid. component: one of them (default: all); path: the file (default: the one
            # last measured, else the seal's, else the policy's). A VM refused as
            # changed-since-stop in this boot is released (released). A running VM is refused.
            method AcceptState(entity: string, component: ?string, path: ?string) -> (
              sealed: []SealedState,
              released: []string
            )
            """

        public struct Request: APIMessage, Equatable {
            public var entity: String
            /// One component; nil: every writable component of the VM.
            public var component: String?
            /// The file to hash; nil: the one last measured for it, else its seal's, else the
            /// policy's file hint.
            public var path: String?

            public init(entity: String, component: String? = nil, path: String? = nil) {
                self.entity = entity
                self.component = component
                self.path = path
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(entity, "entity", max: FieldLimits.name)
                try FieldLimits.check(component, "component", max: FieldLimits.name)
                try FieldLimits.check(path, "path", max: FieldLimits.text)
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var sealed: [SealedState]
            /// The VM was refused as changed-since-stop in this boot: it is released, so its
            /// next start is judged afresh against what was just sealed.
            public var released: [String]

            public init(sealed: [SealedState], released: [String]) {
                self.sealed = sealed
                self.released = released
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            guard case .success(let reply) = outcome else {
                var subject: [String: JSONValue] = ["entity": .string(request.entity)]
                subject.record("component", request.component)
                subject.record("path", request.path)
                return [AuditRecord("vm-state-accepted", subject, outcome)]
            }
            return SealedState.records(reply.sealed, [], entity: request.entity, type: "vm-state-accepted")
        }
    }
}
