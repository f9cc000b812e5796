extension Admin {
    public enum Status: APIMethod {
        public static let name = "io.ukey.Admin.Status"
        public static let role: Role? = .admin
        public static let idl = """
            method Status() -> (
              initialized: bool,
              backend: string,
              # The backend serving each role, and what keeps the sealed state, once initialised.
              roles: ?(registers: string, keys: string, users: string, store: string),
              policyVersion: ?int,
              mode: string,
              bootId: string,
              users: int,
              entities: int,
              measurements: int,
              # How many group commits (one journal write and fsync each) the measurements
              # since ukeyd started took: fewer than the measurements when calls come together.
              measurementBatches: int,
              # The exec guards heard from since ukeyd started: via "socket" (the host's, with
              # its pid) or "channel" (a guest's); state "running", "stopped", or "lost" (gone
              # without a stop: its connection closed, or its channel fell silent), since when,
              # and why it was lost.
              guards: [](vm: string, via: string, pid: ?int, state: string, since: string, reason: ?string)
            )
            """

        public typealias Request = Empty

        /// An exec guard heard from since ukeyd started.
        public struct Guard: APIMessage, Equatable {
            public var vm: String
            /// "socket" (the host's) or "channel" (a guest's).
            public var via: String
            public var pid: Int?
            /// running, stopped or lost.
            public var state: String
            /// RFC 3339.
            public var since: String
            public var reason: String?

            public init(vm: String, via: String, pid: Int?, state: String, since: String, reason: String?) {
                self.vm = vm
                self.via = via
                self.pid = pid
                self.state = state
                self.since = since
                self.reason = reason
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var initialized: Bool
            public var backend: String
            public var roles: Token.Roles?
            public var policyVersion: Int?
            public var mode: String
            public var bootID: String
            public var users: Int
            public var entities: Int
            public var measurements: Int
            public var measurementBatches: Int
            public var guards: [Guard]

            enum CodingKeys: String, CodingKey {
                case bootID = "bootId"
                case initialized, backend, roles, policyVersion, mode, users, entities, measurements
                case measurementBatches, guards
            }

            public init(
                initialized: Bool,
                backend: String,
                roles: Token.Roles?,
                policyVersion: Int?,
                mode: String,
                bootID: String,
                users: Int,
                entities: Int,
                measurements: Int,
                measurementBatches: Int,
                guards: [Guard]
            ) {
                self.initialized = initialized
                self.backend = backend
                self.roles = roles
                self.policyVersion = policyVersion
                self.mode = mode
                self.bootID = bootID
                self.users = users
                self.entities = entities
                self.measurements = measurements
                self.measurementBatches = measurementBatches
                self.guards = guards
            }
        }
    }
}
