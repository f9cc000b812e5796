extension Boot {
    /// Each VM with writable components: what is sealed for each, and (hashing the file)
    /// whether it holds that now.
    public enum States: APIMethod {
        public static let name = "io.ukey.Boot.States"
        public static let role: Role? = .admin
        public static let idl = """
            # Every VM with writable components, or the one named (admin role).
            method States(entity: ?string, hash: ?bool) -> (vms: []VmState)
            """

        public struct Request: APIMessage, Equatable {
            public var entity: String?
            /// Hash each file to say whether it holds what its next start needs.
            public var hash: Bool?

            public init(entity: String? = nil, hash: Bool = false) {
                self.entity = entity
                self.hash = hash
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(entity, "entity", max: FieldLimits.name)
            }
        }

        /// A VM's writable component as sealed: base is the policy's first state, expected what
        /// the next start must find (the seal, else base); by is "release" or "accept" (uid:
        /// who accepted). With hash, current is what the file holds now and matches whether
        /// that is expected (problem: why it was not hashed).
        public struct Component: APIMessage, Equatable {
            public var component: String
            public var path: String?
            public var base: String
            public var expected: String
            public var sealed: String?
            public var sealedAt: String?
            public var by: String?
            public var boot: String?
            public var uid: UInt32?
            public var current: String?
            public var matches: Bool?
            public var problem: String?

            public init(
                component: String,
                path: String?,
                base: String,
                expected: String,
                sealed: String?,
                sealedAt: String?,
                by: String?,
                boot: String?,
                uid: UInt32?,
                current: String? = nil,
                matches: Bool? = nil,
                problem: String? = nil
            ) {
                self.component = component
                self.path = path
                self.base = base
                self.expected = expected
                self.sealed = sealed
                self.sealedAt = sealedAt
                self.by = by
                self.boot = boot
                self.uid = uid
                self.current = current
                self.matches = matches
                self.problem = problem
            }
        }

        public struct VM: APIMessage, Equatable {
            public var entity: String
            /// Its state in this boot's chain.
            public var state: String
            public var reason: String?
            public var components: [Component]

            public init(entity: String, state: String, reason: String?, components: [Component]) {
                self.entity = entity
                self.state = state
                self.reason = reason
                self.components = components
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var vms: [VM]

            public init(vms: [VM]) {
                self.vms = vms
            }
        }
    }
}
