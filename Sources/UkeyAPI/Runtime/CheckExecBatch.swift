import UkeyCodec

extension Runtime {
    /// CheckExec for many files at once, with what a guard caches by.
    public enum CheckExecBatch: GuestMethod {
        public static let name = "io.ukey.Runtime.CheckExecBatch"
        public static let role: Role? = .hypervisor
        public static let maxItems = 10_000
        public static let idl = """
            # The same for many files at once; results are in the order of items. generation
            # moves whenever the policy, the trusted VMs or the mode changes (an exec guard
            # drops its cache then; an empty batch asks for it alone); onTimeout is what a
            # guard of vm (else of the first item's VM) answers when it cannot ask in time: the
            # policy's on-timeout for that VM, else deny when enforcing and allow in audit mode.
            # tag (at most 64 characters) comes back as given: a guard on a virtio-serial port,
            # where a late reply to an abandoned call can still arrive, matches replies by it.
            # On a VM's guard channel the VM is the channel's: vm may be left out, and naming
            # another VM is PermissionDenied.
            method CheckExecBatch(items: []ExecItem, vm: ?string, tag: ?string) -> (results: []ExecResult, generation: int, onTimeout: string, interpreters: string, tag: ?string)
            """

        public struct Request: APIMessage, Equatable {
            public var items: [CheckExec.Request]
            /// The guard's VM, for its on-timeout (an empty batch names no item).
            public var vm: String?
            /// Echoed in the reply, so a guard on a port can tell its reply from a late one.
            public var tag: String?

            public init(items: [CheckExec.Request], vm: String? = nil, tag: String? = nil) {
                self.items = items
                self.vm = vm
                self.tag = tag
            }

            /// Any item that is not a valid CheckExec request makes the whole batch's items invalid.
            public func validate() throws(APIError) {
                guard items.count <= CheckExecBatch.maxItems else { throw .invalidParameter("items") }
                for item in items {
                    do throws(APIError) { try item.validate() } catch { throw .invalidParameter("items") }
                }
                try FieldLimits.check(vm, "vm", max: FieldLimits.name)
                try FieldLimits.check(tag, "tag", max: FieldLimits.name)
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var results: [CheckExec.Reply]
            /// The decision state's generation: a guard drops its cache when it moves.
            public var generation: UInt64
            public var onTimeout: String
            /// Whether the guard judges what interpreters read ("check") or not ("allow").
            public var interpreters: String
            public var tag: String?

            public init(
                results: [CheckExec.Reply],
                generation: UInt64,
                onTimeout: String,
                interpreters: String,
                tag: String?
            ) {
                self.results = results
                self.generation = generation
                self.onTimeout = onTimeout
                self.interpreters = interpreters
                self.tag = tag
            }
        }

        public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] {
            switch outcome {
            case .success(let reply):
                return zip(request.items, reply.results).map { CheckExec.record($0, .success($1)) }
            case .failure:
                return [AuditRecord("exec-batch", ["items": .int(request.items.count)], outcome)]
            }
        }

        /// The batch's `vm` and every item's are the channel's.
        public static func bind(_ parameters: [String: JSONValue], to vm: String) -> [String: JSONValue]? {
            guard var bound = GuestBinding.bind(parameters, to: vm) else { return nil }
            guard case .array(let items)? = parameters["items"] else { return bound }
            var boundItems: [JSONValue] = []
            boundItems.reserveCapacity(items.count)
            for item in items {
                // An item that is not an object is left for the reader to refuse as it is.
                guard case .object(let fields) = item else {
                    boundItems.append(item)
                    continue
                }
                guard let fields = GuestBinding.bind(fields, to: vm) else { return nil }
                boundItems.append(.object(fields))
            }
            bound["items"] = .array(boundItems)
            return bound
        }
    }
}
