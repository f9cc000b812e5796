extension Boot {
    /// A VM's QEMU is running: it has opened every file it loads, so ukeyd stops holding them to
    /// their measured identity (libvirt's `started begin`; ukey-qemu once QEMU is up).
    public enum Started: APIMethod {
        public static let name = "io.ukey.Boot.Started"
        public static let role: Role? = .hypervisor
        public static let idl = """
            # A VM's QEMU has opened what it loads (hypervisor role; the libvirt hook on started
            # begin): the files measured with hold for it are no longer held. held: how many.
            # Its writable state will be sealed at its release, unless an open of a held file
            # was refused. phase "begin": a new start of the VM begins (before the gate
            # measures); what an earlier attempt held is let go, and nothing else.
            method Started(entity: string, phase: ?string) -> (held: int)
            """

        public struct Request: APIMessage, Equatable {
            public var entity: String
            /// "begin": a new start of the VM begins (the gate, before it measures): what an
            /// earlier attempt held is let go, and nothing is said about QEMU.
            public var phase: String?

            public init(entity: String, phase: String? = nil) {
                self.entity = entity
                self.phase = phase
            }

            public func validate() throws(APIError) {
                try FieldLimits.check(entity, "entity", max: FieldLimits.name)
                try FieldLimits.check(phase, "phase", in: ["begin"])
            }
        }

        public struct Reply: APIMessage, Equatable {
            /// How many measured files were held for the VM's start.
            public var held: Int

            public init(held: Int) {
                self.held = held
            }
        }
    }
}
