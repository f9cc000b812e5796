import UkeyCodec

extension Boot {
    /// A VM stopped (the libvirt hook on release): it and what it loaded are measured afresh on
    /// its next start, unless it was found untrusted in this boot, which a stop does not undo.
    public enum Release: APIMethod {
        public static let name = "io.ukey.Boot.Release"
        public static let role: Role? = .hypervisor
        public static let idl = """
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
              sealed: []SealedState,
              unsealed: []UnsealedState
            )
            """

        public struct Request: APIMessage, Equatable {
            public var entity: String

            public init(entity: String) {
                self.entity = entity
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(entity, "entity", max: FieldLimits.name)
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var released: [String]
            public var state: String
            public var reason: String?
            public var sealed: [SealedState]
            public var unsealed: [UnsealedState]

            public init(
                released: [String],
                state: String,
                reason: String?,
                sealed: [SealedState],
                unsealed: [UnsealedState]
            ) {
                self.released = released
                self.state = state
                self.reason = reason
                self.sealed = sealed
                self.unsealed = unsealed
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            var subject: [String: JSONValue] = ["entity": .string(request.entity)]
            guard case .success(let reply) = outcome else { return [AuditRecord("release", subject, outcome)] }
            subject["state"] = .string(reply.state)
            subject["released"] = .string(reply.released.joined(separator: ","))
            // Each seal of the VM's state is a record of its own, with what it held before.
            return [AuditRecord("release", subject)]
                + SealedState.records(reply.sealed, reply.unsealed, entity: request.entity, type: "vm-state-sealed")
        }
    }

    /// A writable component sealed at a stop (or accepted): what it held at its start, and now.
    public struct SealedState: APIMessage, Equatable {
        public var component: String
        public var previous: String
        public var digest: String

        public init(component: String, previous: String, digest: String) {
            self.component = component
            self.previous = previous
            self.digest = digest
        }

        /// One record per component sealed (`type`) or left unsealed (`vm-state-unsealed`).
        static func records(
            _ sealed: [SealedState],
            _ unsealed: [UnsealedState],
            entity: String,
            type: String
        ) -> [AuditRecord] {
            sealed.map {
                AuditRecord(
                    type,
                    [
                        "entity": .string(entity), "component": .string($0.component),
                        "previous": .string($0.previous), "digest": .string($0.digest),
                    ]
                )
            }
                + unsealed.map {
                    AuditRecord(
                        "vm-state-unsealed",
                        ["entity": .string(entity), "component": .string($0.component), "reason": .string($0.reason)]
                    )
                }
        }
    }

    /// A writable component not sealed at a stop, and why: its next start is refused unless it
    /// holds its old seal again, or is accepted.
    public struct UnsealedState: APIMessage, Equatable {
        public var component: String
        public var reason: String

        public init(component: String, reason: String) {
            self.component = component
            self.reason = reason
        }
    }
}
