/// What ukey reads of a libvirt domain's XML (the hook gets it on stdin, as libvirt 9.0 writes
/// it after parsing the user's): the name, ukey's metadata, everything the guest loads from the
/// host, and every socket it binds. `DomainReader` fills it, refusing what it cannot account for.
public struct DomainXML: Sendable, Equatable {
    /// ukey's namespace for `<metadata>`: `<ukey:entity xmlns:ukey="https://ukey.dev/libvirt/1">NAME</ukey:entity>`.
    public static let namespace = "https://ukey.dev/libvirt/1"
    public static let maxBytes = XMLTree.maxBytes

    /// One layer of a `<backingStore>` chain written in the XML.
    public struct BackingLayer: Sendable, Equatable {
        public var path: String
        public var format: String
    }

    public struct Disk: Sendable, Equatable {
        public var type: String
        public var device: String
        /// The image (type file) or device (type block); nil for a disk without media.
        public var source: String?
        /// The guest's name for it (vda, sdb): names its component.
        public var target: String?
        /// raw or qcow2 (libvirt's default is raw); nil where the gate does not know (a
        /// -blockdev file node), and then a qcow2 header is followed.
        public var format: String?
        /// The chain under the image as the XML names it: nil when it names none (libvirt then
        /// reads the images' headers), [] for `<backingStore/>` alone (no backing file).
        public var backingStore: [BackingLayer]?
        /// Whether the chain in the XML ends with `<backingStore/>` (libvirt reads no further).
        public var backingStoreTerminated = false
        public var readOnly = false
        public var shareable = false

        public init(
            type: String = "file",
            device: String = "disk",
            source: String?,
            target: String?,
            format: String? = "qcow2"
        ) {
            self.type = type
            self.device = device
            self.source = source
            self.target = target
            self.format = format
        }
    }

    public var name: String = ""
    /// `<ukey:entity>`: the policy entity this domain is; nil means the domain's name.
    public var entity: String?
    /// A logged-in user's session, for a user VM: the `session` attribute of `<ukey:entity>`.
    /// (An attribute, not an element of its own: libvirt keeps one metadata element per
    /// namespace, and drops the rest.) A `<ukey:session>` element is read too.
    public var session: String?
    public var kernel: String?
    public var initrd: String?
    public var cmdline: String?
    public var dtb: String?
    /// The firmware: `<loader>`, or QEMU's default SeaBIOS when there is none.
    public var loader: String?
    /// The NVRAM varstore (`<nvram>`), which libvirt creates from `nvramTemplate` when missing.
    public var nvram: String?
    public var nvramTemplate: String?
    /// `<acpi><table>` files.
    public var acpiTables: [String] = []
    public var emulator: String?
    public var disks: [Disk] = []
    /// Where each of the domain's ukey guard channels (a virtio channel named `io.ukey.guard.0`)
    /// is bound on the host: the socket ukeyd serves as this VM's.
    public var guardChannels: [String] = []
    /// Every Unix socket the domain binds or connects to, with what names it (so the hook can
    /// keep a domain out of ukey's guard directory, whatever the channel is called).
    public var sockets: [(path: String, element: String)] = []
    public static let guardChannelName = "io.ukey.guard.0"
    /// The control sockets of the swtpm the guest's TPM connects to (libvirt's `<tpm><backend
    /// type='external'><source type='unix' path=...>`, QEMU's `-tpmdev emulator,chardev=`): a
    /// vTPM someone else runs, which the gate lets through only when it is ukeyd's for this VM.
    public var vtpmSockets: [String] = []

    public static func == (a: DomainXML, b: DomainXML) -> Bool {
        a.name == b.name && a.entity == b.entity && a.session == b.session && a.kernel == b.kernel
            && a.initrd == b.initrd
            && a.cmdline == b.cmdline && a.dtb == b.dtb && a.loader == b.loader && a.nvram == b.nvram
            && a.nvramTemplate == b.nvramTemplate
            && a.acpiTables == b.acpiTables && a.emulator == b.emulator && a.disks == b.disks
            && a.guardChannels == b.guardChannels
            && a.sockets.map(\.path) == b.sockets.map(\.path) && a.vtpmSockets == b.vtpmSockets
    }

    /// Reads a domain as libvirt hands it to its hook; refuses what can make QEMU read a host file
    /// ukey does not measure (`DomainReader`). `defaultFirmware`: QEMU's SeaBIOS, measured as the
    /// loader of a domain that names none.
    public init(
        parsing bytes: [UInt8],
        defaultFirmware: String? = QemuCommandLine.defaultFirmwarePath()
    ) throws(HypervisorError) {
        self = try DomainReader.read(XMLTree(parsing: bytes).root, defaultFirmware: defaultFirmware)
    }

    /// A guest described directly (`ukey-qemu` builds one from a qemu command line).
    public init(
        name: String,
        entity: String? = nil,
        session: String? = nil,
        kernel: String? = nil,
        initrd: String? = nil,
        cmdline: String? = nil,
        loader: String? = nil,
        disks: [Disk] = []
    ) {
        self.name = name
        self.entity = entity
        self.session = session
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.loader = loader
        self.disks = disks
    }

    init() {}
}
