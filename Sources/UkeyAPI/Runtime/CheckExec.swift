import UkeyCodec

extension Runtime {
    /// Whether a file may run in a VM: the exec path's question.
    public enum CheckExec: GuestMethod {
        public static let name = "io.ukey.Runtime.CheckExec"
        public static let role: Role? = .hypervisor
        public static let idl = """
            # decision is allow or deny. vm is required but on a VM's guard channel, where it
            # is the channel's.
            method CheckExec(vm: ?string, path: string, digest: string) -> (
              decision: string,
              rule: ?string,
              reason: ?string
            )
            """

        public struct Request: APIMessage, Equatable {
            /// Required on ukeyd's socket; on a guest's channel, the channel's VM.
            public var vm: String?
            public var path: String
            /// "<alg>:<lowercase hex>" of the file.
            public var digest: String

            public init(vm: String?, path: String, digest: String) {
                self.vm = vm
                self.path = path
                self.digest = digest
            }

            public func validate() throws(APIError) {
                guard vm != nil else { throw .invalidParameter("vm") }
                try FieldLimits.check(vm, "vm", max: FieldLimits.name)
                try FieldLimits.check(path, "path", max: FieldLimits.text)
                try FieldLimits.check(digest, "digest", max: 200)
            }

            /// By hand: the exec path reads one of these per exec asked about (the `Codable`
            /// reader's containers cost it a sixth of its rate). `HandWireTests` holds the
            /// two readers to the same answers.
            public init(wire parameters: [String: JSONValue]) throws(APIError) {
                vm = try WireField.optionalString(parameters, "vm")
                path = try WireField.string(parameters, "path")
                digest = try WireField.string(parameters, "digest")
                try validate()
            }

            public var wire: [String: JSONValue] {
                var wire: [String: JSONValue] = ["path": .string(path), "digest": .string(digest)]
                WireField.set(&wire, "vm", vm)
                return wire
            }
        }

        public struct Reply: APIMessage, Equatable {
            /// allow or deny.
            public var decision: String
            public var rule: String?
            public var reason: String?

            public init(decision: String, rule: String?, reason: String?) {
                self.decision = decision
                self.rule = rule
                self.reason = reason
            }

            /// An exec that would be denied but for audit mode is recorded as a denial is.
            var allowedOutright: Bool { decision != "deny" && reason?.hasPrefix("audit-mode") != true }

            /// By hand, as the request's.
            public var wire: [String: JSONValue] {
                var wire: [String: JSONValue] = ["decision": .string(decision)]
                if let rule { wire["rule"] = .string(rule) }
                if let reason { wire["reason"] = .string(reason) }
                return wire
            }

            public init(wire parameters: [String: JSONValue]) throws(APIError) {
                guard case .string(let decision)? = parameters["decision"] else { throw .invalidParameter("decision") }
                self.decision = decision
                rule = try Self.optionalString(parameters, "rule")
                reason = try Self.optionalString(parameters, "reason")
            }

            private static func optionalString(
                _ parameters: [String: JSONValue],
                _ key: String
            ) throws(APIError)
                -> String?
            {
                switch parameters[key] {
                case nil, .null?: return nil
                case .string(let value)? where !value.utf8.contains(0): return value
                default: throw .invalidParameter(key)
                }
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            [record(request, outcome)]
        }

        /// One exec's record: allowed ones are sampled, denials counted (`AuditRecord.Kind.exec`).
        /// Its subject is made only if it is kept.
        static func record(_ request: Request, _ outcome: Result<Reply, APIError>) -> AuditRecord {
            let allowed: Bool
            if case .success(let reply) = outcome { allowed = reply.allowedOutright } else { allowed = false }
            return AuditRecord("exec", kind: .exec(allowed: allowed)) {
                var subject: [String: JSONValue] = [
                    "path": .string(request.path), "digest": .string(request.digest),
                ]
                subject.record("vm", request.vm)
                switch outcome {
                case .success(let reply):
                    subject["decision"] = .string(reply.decision)
                    subject.record("reason", reply.reason)
                    subject.record("rule", reply.rule)
                case .failure(let error):
                    subject["error"] = .string(error.name)
                }
                return subject
            }
        }
    }
}
