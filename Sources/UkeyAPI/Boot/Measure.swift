import UkeyCodec

extension Boot {
    /// Measures one component: by digest, by a path ukeyd hashes with the caller's rights, or by
    /// the file the policy names.
    public enum Measure: APIMethod {
        public static let name = "io.ukey.Boot.Measure"
        public static let role: Role? = .hypervisor
        public static let idl = """
            # Measures one component (hypervisor role). Give its digest, or a path for ukeyd
            # to hash; with neither, ukeyd hashes the file the policy names. verdict is the
            # entity's state after this measurement (pending, trusted, untrusted); load is
            # whether the hypervisor may load the component. Measurements pipelined on one
            # connection are taken in the order written (sharing a batch) and answered in that
            # order; a call after them on the connection sees their effect. hold (with path)
            # names the VM whose start this is: until Started or Release of that VM, an open of
            # path that finds another file than the one hashed, or the file changed, is refused
            # by the kernel and recorded (open-refused); a path someone other than root could
            # redirect is refused (CannotHash). A writable component (the VM's own disk) is
            # judged against the state sealed at the VM's last stop: another is reason
            # "changed-since-stop". cached: the digest is the one hashed earlier in this host
            # boot from the same file, its identity (device, inode, size, mtime, ctime,
            # generation) unchanged since; the measurement is made and recorded all the same.
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
              digest: string,
              cached: bool
            )
            """

        public struct Request: APIMessage, Equatable {
            public var entity: String
            public var component: String
            /// "<alg>:<lowercase hex>".
            public var digest: String?
            public var path: String?
            /// A session, or a start ticket (`Auth.Login` with forVm).
            public var session: String?
            /// The VM whose start this measurement is for: the file is held to what was hashed
            /// until that VM's QEMU has opened it.
            public var hold: String?

            public init(
                entity: String,
                component: String,
                digest: String? = nil,
                path: String? = nil,
                session: String? = nil,
                hold: String? = nil
            ) {
                self.entity = entity
                self.component = component
                self.digest = digest
                self.path = path
                self.session = session
                self.hold = hold
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(entity, "entity", max: FieldLimits.name)
                try FieldLimits.check(component, "component", max: FieldLimits.name)
                try FieldLimits.check(session, "session", max: FieldLimits.credential)
                try FieldLimits.check(digest, "digest", max: 200)
                try FieldLimits.check(path, "path", max: FieldLimits.text)
                try FieldLimits.check(hold, "hold", max: FieldLimits.name)
            }

            /// By hand, as CheckExec's: a boot reads one per component (`HandWireTests` holds it
            /// to the `Codable` reader).
            public init(wire parameters: [String: JSONValue]) throws(APIError) {
                entity = try WireField.string(parameters, "entity")
                component = try WireField.string(parameters, "component")
                digest = try WireField.optionalString(parameters, "digest")
                path = try WireField.optionalString(parameters, "path")
                session = try WireField.optionalString(parameters, "session")
                hold = try WireField.optionalString(parameters, "hold")
                try validate()
            }

            public var wire: [String: JSONValue] {
                var wire: [String: JSONValue] = ["entity": .string(entity), "component": .string(component)]
                WireField.set(&wire, "digest", digest)
                WireField.set(&wire, "path", path)
                WireField.set(&wire, "session", session)
                WireField.set(&wire, "hold", hold)
                return wire
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var verdict: String
            public var match: Bool
            public var load: Bool
            public var reason: String?
            public var register: Int
            public var eventIndex: Int
            public var digest: String
            /// Hashed earlier in this host boot from the same, unchanged file.
            public var cached: Bool

            public init(
                verdict: String,
                match: Bool,
                load: Bool,
                reason: String?,
                register: Int,
                eventIndex: Int,
                digest: String,
                cached: Bool
            ) {
                self.verdict = verdict
                self.match = match
                self.load = load
                self.reason = reason
                self.register = register
                self.eventIndex = eventIndex
                self.digest = digest
                self.cached = cached
            }

            /// By hand, as the request's.
            public init(wire parameters: [String: JSONValue]) throws(APIError) {
                verdict = try WireField.string(parameters, "verdict")
                match = try WireField.bool(parameters, "match")
                load = try WireField.bool(parameters, "load")
                reason = try WireField.optionalString(parameters, "reason")
                register = try WireField.int(parameters, "register")
                eventIndex = try WireField.int(parameters, "eventIndex")
                digest = try WireField.string(parameters, "digest")
                cached = try WireField.bool(parameters, "cached")
            }

            public var wire: [String: JSONValue] {
                var wire: [String: JSONValue] = [
                    "verdict": .string(verdict), "match": .bool(match), "load": .bool(load),
                    "register": .int(register), "eventIndex": .int(eventIndex), "digest": .string(digest),
                    "cached": .bool(cached),
                ]
                WireField.set(&wire, "reason", reason)
                return wire
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            var subject: [String: JSONValue] = [:]
            subject.record("entity", request.entity)
            subject.record("component", request.component)
            subject.record("path", request.path)
            subject.record("hold", request.hold)
            subject.record("digest", request.digest)
            if case .success(let reply) = outcome {
                subject.record("digest", reply.digest)
                subject.record("verdict", reply.verdict)
                subject.record("reason", reply.reason)
                subject["load"] = .bool(reply.load)
                if reply.cached { subject["cached"] = .bool(true) }
            }
            return [AuditRecord("measure", subject, outcome)]
        }
    }
}
