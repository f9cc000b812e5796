import UkeyCodec

extension VTPM {
    /// Starts the VM's vTPM for the start the gate has just measured (libvirt's prepare hook,
    /// ukey-qemu): only when the VM and everything measured under it are trusted in this boot.
    public enum Start: APIMethod {
        public static let name = "io.ukey.VTPM.Start"
        public static let role: Role? = .hypervisor
        public static let idl = """
            # Starts the vTPM of a VM whose entity has vtpm: true, once the gate measured its
            # start and the VM and every entity under it are trusted (hypervisor role). socket:
            # the control socket QEMU connects to. created: its state was made now (swtpm_setup,
            # EK certified). setupMilliseconds, startMilliseconds: what each step took. A VM
            # whose vTPM already runs gets the same socket. Refused otherwise, naming why.
            method Start(entity: string) -> (
              socket: string,
              created: bool,
              setupMilliseconds: int,
              startMilliseconds: int
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
            public var socket: String
            public var created: Bool
            public var setupMilliseconds: Int
            public var startMilliseconds: Int

            public init(socket: String, created: Bool, setupMilliseconds: Int, startMilliseconds: Int) {
                self.socket = socket
                self.created = created
                self.setupMilliseconds = setupMilliseconds
                self.startMilliseconds = startMilliseconds
            }
        }

        /// Every start and every refusal is recorded: a vTPM's secrets are released by it.
        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            var subject: [String: JSONValue] = ["vm": .string(request.entity)]
            if case .success(let reply) = outcome {
                subject["created"] = .bool(reply.created)
                subject["setupMs"] = .int(reply.setupMilliseconds)
                subject["startMs"] = .int(reply.startMilliseconds)
            }
            return [AuditRecord("vtpm-start", subject, outcome)]
        }
    }
}
