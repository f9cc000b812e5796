#if canImport(Glibc)
import Glibc
#endif

/// What a qemu command line loads, for `ukey-qemu`: the same guest description the libvirt hook
/// reads from a domain's XML, so both gates ask ukeyd the same questions (`DomainMapping`).
///
/// Read as QEMU 7.2 reads it, and default-deny: every word is taken by QEMU's own option table
/// (`QemuOptionTable`: an option's argument is the next word, whatever it looks like), each
/// argument by QEMU's own grammar for that option (QemuOpts, keyval or JSON: `QemuOpts`,
/// `QemuJSON`), and only an allow-list passes: options that load no file, and the options and
/// keys whose files ukey measures (-kernel, -initrd, -append, -bios, -dtb, -drive file= with a
/// format, -blockdev filename=). Anything else that can make QEMU read a host file is refused
/// with the option, and the key, named: a key QEMU would take twice, a dotted key
/// (`file.filename=`), a `json:` or `proto:` file name, a relative path, a device driver or
/// object type not on the list, a `romfile=`. Without -bios, QEMU's own default firmware (SeaBIOS's
/// bios-256k.bin from its data directories) is what the guest runs first, and it is measured as
/// the loader.
public enum QemuCommandLine {
    /// Where QEMU 7.2 on Debian finds its firmware and ROMs (configure's --firmwarepath), in order.
    public static let dataDirectories = ["/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu"]

    public static func guest(
        _ arguments: [String],
        entity: String?,
        session: String?,
        defaultFirmware: String? = defaultFirmwarePath()
    ) throws(HypervisorError) -> DomainXML {
        var reader = Reader(defaultFirmware: defaultFirmware)
        try reader.read(arguments)
        let guestName = entity ?? reader.name
        guard let guestName else { throw HypervisorError("the guest needs a name: -name NAME, or UKEY_ENTITY") }
        var guest = DomainXML(
            name: guestName,
            entity: entity,
            session: session,
            kernel: reader.kernel,
            initrd: reader.initrd,
            cmdline: reader.cmdline,
            loader: reader.loader ?? (reader.machineNone ? nil : reader.defaultFirmware),
            disks: reader.disks
        )
        guest.dtb = reader.dtb
        for chardev in reader.tpmChardevs {
            guard let path = reader.socketChardevs[chardev] else {
                throw HypervisorError(
                    "-tpmdev emulator,chardev=\(chardev): no -chardev socket,id=\(chardev),path=... (the vTPM's control socket)"
                )
            }
            guest.vtpmSockets.append(path)
        }
        if guest.loader == nil, !reader.machineNone {
            throw HypervisorError(
                "QEMU's default firmware (bios-256k.bin) is not in \(dataDirectories.joined(separator: ", ")): name one with -bios"
            )
        }
        return guest
    }

    /// bios-256k.bin as QEMU finds it in its data directories (the file itself: Debian's
    /// /usr/share/qemu/bios-256k.bin is a link to SeaBIOS's), or nil.
    public static func defaultFirmwarePath() -> String? {
        for directory in dataDirectories {
            guard let resolved = realpath("\(directory)/bios-256k.bin", nil) else { continue }
            defer { free(resolved) }
            return String(cString: resolved)
        }
        return nil
    }

    struct Reader {
        let defaultFirmware: String?
        var name: String?
        var kernel: String?, initrd: String?, cmdline: String?, loader: String?, dtb: String?
        var disks: [DomainXML.Disk] = []
        var machineNone = false
        var counts: [String: Int] = [:]
        /// Each socket chardev's path, by id; and the chardevs -tpmdev emulator connects through.
        var socketChardevs: [String: String] = [:]
        var tpmChardevs: [String] = []

        init(defaultFirmware: String?) {
            self.defaultFirmware = defaultFirmware
        }

        mutating func read(_ arguments: [String]) throws(HypervisorError) {
            var index = 0
            while index < arguments.count {
                let word = arguments[index]
                index += 1
                // A word that is not an option is an image QEMU opens as -hda does, its format guessed.
                guard word.hasPrefix("-"), word.count > 1 else {
                    throw HypervisorError(
                        "'\(word)': QEMU takes a word that is not an option as a disk image (as -hda, its format guessed); use -drive file=...,format="
                    )
                }
                // vl.c strips one extra dash: --name is -name, ---name is nothing.
                let name = word.hasPrefix("--") ? String(word.dropFirst(2)) : String(word.dropFirst())
                guard let takesArgument = QemuOptionTable.takesArgument[name] else {
                    throw HypervisorError("\(word) is not an option of QEMU 7.2 (qemu-system-x86_64)")
                }
                var argument: String?
                if takesArgument {
                    guard index < arguments.count else { throw HypervisorError("-\(name) needs a value") }
                    argument = arguments[index]
                    index += 1
                }
                if let reason = QemuOptionTable.refused[name] {
                    throw HypervisorError("-\(name) is refused: it \(reason)")
                }
                if QemuOptionTable.harmless.contains(name) { continue }
                guard let argument else {
                    throw HypervisorError("-\(name) is not an option ukey-qemu knows to be safe; refused")
                }
                try option(name, argument)
            }
        }

        mutating func option(_ name: String, _ argument: String) throws(HypervisorError) {
            let option = "-\(name)"
            switch name {
            case "name":
                let opts = try QemuOpts(parsing: argument, option: option, implied: "guest", grammar: .qemuOpts)
                try Self.only(opts, ["guest", "process", "debug-threads"], option)
                self.name = opts["guest"]
            case "kernel": kernel = try Self.path(argument, option)
            case "initrd":
                // A multiboot kernel takes a comma list of modules here: one file only.
                guard !argument.contains(",") else {
                    throw HypervisorError("-initrd with a comma names multiboot modules; ukey measures one initrd")
                }
                initrd = try Self.path(argument, option)
            case "append": cmdline = argument
            case "bios": loader = try Self.path(argument, option)
            case "dtb": dtb = try Self.path(argument, option)
            case "machine", "M": try machine(argument, option)
            case "m":
                try Self.only(
                    try QemuOpts(parsing: argument, option: option, implied: "size", grammar: .qemuOpts),
                    ["size", "slots", "maxmem"],
                    option
                )
            case "smp":
                try Self.only(
                    try QemuOpts(parsing: argument, option: option, implied: "cpus", grammar: .keyval),
                    ["cpus", "sockets", "dies", "clusters", "cores", "threads", "maxcpus"],
                    option
                )
            case "accel":
                let opts = try QemuOpts(parsing: argument, option: option, implied: "accel", grammar: .qemuOpts)
                try Self.only(
                    opts,
                    [
                        "accel", "thread", "tb-size", "split-wx", "kernel-irqchip", "kvm-shadow-mem", "dirty-ring-size",
                        "notify-vmexit", "notify-window",
                    ],
                    option
                )
                guard ["kvm", "tcg"].contains(opts["accel"] ?? "") else {
                    throw HypervisorError("\(option): accel must be kvm or tcg")
                }
            case "boot":
                let opts = try QemuOpts(parsing: argument, option: option, implied: "order", grammar: .keyval)
                try Self.only(
                    opts,
                    ["order", "once", "menu", "strict", "reboot-timeout", "splash-time"],
                    option,
                    why: "splash= loads a picture file"
                )
            case "rtc":
                try Self.only(
                    try QemuOpts(parsing: argument, option: option, implied: nil, grammar: .qemuOpts),
                    ["base", "clock", "driftfix"],
                    option
                )
            case "overcommit":
                try Self.only(
                    try QemuOpts(parsing: argument, option: option, implied: nil, grammar: .qemuOpts),
                    ["mem-lock", "cpu-pm"],
                    option
                )
            case "action":
                try Self.only(
                    try QemuOpts(parsing: argument, option: option, implied: nil, grammar: .qemuOpts),
                    ["reboot", "shutdown", "panic", "watchdog"],
                    option
                )
            case "msg":
                try Self.only(
                    try QemuOpts(parsing: argument, option: option, implied: nil, grammar: .qemuOpts),
                    ["timestamp", "guest-name"],
                    option
                )
            case "sandbox":
                try Self.only(
                    try QemuOpts(parsing: argument, option: option, implied: "enable", grammar: .qemuOpts),
                    ["enable", "obsolete", "elevateprivileges", "spawn", "resourcecontrol"],
                    option
                )
            case "compat":
                let keys = ["deprecated-input", "deprecated-output", "unstable-input", "unstable-output"]
                if argument.hasPrefix("{") {
                    try Self.flatJSON(try QemuJSON(parsing: argument), keys, option)
                } else {
                    try Self.only(
                        try QemuOpts(parsing: argument, option: option, implied: nil, grammar: .keyval),
                        keys,
                        option
                    )
                }
            case "icount":
                try Self.only(
                    try QemuOpts(parsing: argument, option: option, implied: "shift", grammar: .qemuOpts),
                    ["shift", "align", "sleep"],
                    option,
                    why: "rr= replays a recording from a file"
                )
            case "trace":
                try Self.only(
                    try QemuOpts(parsing: argument, option: option, implied: "enable", grammar: .qemuOpts),
                    ["enable", "file"],
                    option,
                    why: "events= reads a file"
                )
            case "numa":
                let opts = try QemuOpts(parsing: argument, option: option, implied: "type", grammar: .qemuOpts)
                try Self.only(
                    opts,
                    [
                        "type", "nodeid", "cpus", "memdev", "initiator", "src", "dst", "val", "hierarchy", "data-type",
                        "latency", "bandwidth", "node-id", "socket-id", "die-id", "cluster-id", "core-id", "thread-id",
                        "size", "level", "associativity", "policy", "line",
                    ],
                    option
                )
            case "mon":
                try Self.only(
                    try QemuOpts(parsing: argument, option: option, implied: "chardev", grammar: .qemuOpts),
                    ["chardev", "mode", "pretty"],
                    option
                )
            case "serial", "parallel", "monitor", "qmp", "qmp-pretty", "debugcon":
                try Self.chardevSpec(argument, option)
            case "chardev":
                let opts = try Self.chardev(argument, option)
                if opts["backend"] == "socket", let id = opts["id"], let path = opts["path"] {
                    socketChardevs[id] = path
                }
            case "display": try Self.display(argument, option)
            case "vnc":
                let opts = try QemuOpts(parsing: argument, option: option, implied: "vnc", grammar: .qemuOpts)
                try Self.only(
                    opts,
                    [
                        "vnc", "websocket", "share", "to", "ipv4", "ipv6", "password", "password-secret", "reverse",
                        "lock-key-sync", "key-delay-ms", "lossy", "non-adaptive", "connections", "audiodev",
                        "power-control", "head", "display",
                    ],
                    option,
                    why: "tls-creds=, sasl= and their authz read files"
                )
            case "usbdevice":
                guard ["tablet", "mouse", "keyboard"].contains(argument) else {
                    throw HypervisorError("\(option) \(argument): only tablet, mouse and keyboard are allowed")
                }
            case "audio", "audiodev": try Self.audio(argument, option)
            case "drive": try drive(argument, option)
            case "blockdev": try blockdev(argument, option)
            case "device": try Self.device(argument, option)
            case "netdev", "nic": try Self.network(argument, option)
            case "net":
                guard argument == "none" else {
                    throw HypervisorError("\(option) \(argument): only -net none is allowed; use -netdev or -nic")
                }
            case "object": try Self.object(argument, option)
            case "tpmdev":
                tpmChardevs.append(try Self.tpm(argument, option))
            case "smbios":
                let opts = try QemuOpts(parsing: argument, option: option, implied: nil, grammar: .qemuOpts)
                for key in ["file", "path"] where opts[key] != nil {
                    throw HypervisorError("\(option) \(key)= reads a host file ukey does not measure; refused")
                }
            default:
                throw HypervisorError("-\(name) is not an option ukey-qemu knows to be safe; refused")
            }
        }

        /// -machine: a type whose firmware QEMU chooses by itself (bios-256k.bin for pc and q35),
        /// and keys that load no file. kernel=, initrd=, dtb=, firmware= are refused: the options
        /// of their own are what ukey reads.
        mutating func machine(_ argument: String, _ option: String) throws(HypervisorError) {
            let opts = try QemuOpts(parsing: argument, option: option, implied: "type", grammar: .keyval)
            let allowed = [
                "type", "accel", "usb", "graphics", "dump-guest-core", "mem-merge", "smm", "vmport", "kernel-irqchip",
                "kernel_irqchip", "hpet",
                "sata", "pic", "pit", "acpi", "suppress-vmdesc", "memory-backend", "i8042", "max-ram-below-4g",
                "default-bus-bypass-iommu",
                "smbios-entry-point-type", "x-oem-id", "x-oem-table-id", "bus-lock-ratelimit", "kvm-shadow-mem",
                "nvdimm", "hmat",
            ]
            for item in opts.items where !allowed.contains(item.key) {
                let hint =
                    [
                        "kernel": " (use -kernel)", "initrd": " (use -initrd)", "dtb": " (use -dtb)",
                        "firmware": " (use -bios)", "append": " (use -append)",
                    ][item.key] ?? ""
                throw HypervisorError(
                    "\(option) \(item.key)= is not a key ukey-qemu knows to load no file\(hint); refused"
                )
            }
            if let type = opts["type"] {
                if type == "none" {
                    machineNone = true
                } else if !(type == "pc" || type == "q35" || type.hasPrefix("pc-i440fx-") || type.hasPrefix("pc-q35-"))
                {
                    throw HypervisorError(
                        "\(option) \(type): ukey knows which firmware QEMU runs only for the pc and q35 machines"
                    )
                }
            }
            if let accel = opts["accel"], !accel.split(separator: ":").allSatisfy({ $0 == "kvm" || $0 == "tcg" }) {
                throw HypervisorError("\(option) accel=\(accel): only kvm and tcg")
            }
        }

        /// -drive: a file ukey measures (with its backing chain), of a format named, or no file
        /// (an empty CD-ROM drive). The guest's name for it follows QEMU's interface.
        mutating func drive(_ argument: String, _ option: String) throws(HypervisorError) {
            let opts = try QemuOpts(parsing: argument, option: option, implied: nil, grammar: .qemuOpts)
            let allowed: Set<String> = [
                "file", "if", "index", "bus", "unit", "media", "id", "format", "cache", "aio", "discard",
                "detect-zeroes", "readonly", "read-only",
                "snapshot", "werror", "rerror", "serial", "copy-on-read", "node-name", "auto-read-only", "force-share",
                "cache.direct",
                "cache.no-flush", "cache.writeback", "iops", "iops_rd", "iops_wr", "bps", "bps_rd", "bps_wr",
                "iops_max", "iops_rd_max",
                "iops_wr_max", "bps_max", "bps_rd_max", "bps_wr_max", "iops_size", "group", "stats-account-invalid",
                "stats-account-failed",
            ]
            for item in opts.items where !allowed.contains(item.key) && !item.key.hasPrefix("throttling.") {
                let why =
                    item.key.contains(".")
                    ? "a dotted key sets an option of a block node ukey does not measure (file.filename=, backing.*)"
                    : "it is not a key ukey-qemu knows to be safe"
                throw HypervisorError("\(option) \(item.key)= is refused: \(why)")
            }
            let interface = opts["if"] ?? "ide"
            guard ["ide", "virtio", "scsi", "none", "pflash"].contains(interface) else {
                throw HypervisorError("\(option) if=\(interface): only ide, virtio, scsi, none and pflash")
            }
            guard let file = opts["file"], !file.isEmpty else {
                guard opts["media"] == "cdrom" else {
                    throw HypervisorError("\(option) without file= is an empty drive; say media=cdrom")
                }
                return
            }
            guard let format = opts["format"] else {
                throw HypervisorError(
                    "\(option) file=\(file) has no format=: QEMU would guess it from the image's content; name format=raw or format=qcow2"
                )
            }
            guard format == "raw" || format == "qcow2" else {
                throw HypervisorError("\(option) format=\(format): ukey measures raw and qcow2 images only")
            }
            let path = try Self.imagePath(file, option)
            disks.append(DomainXML.Disk(source: path, target: target(interface: interface), format: format))
        }

        /// -blockdev: a `file` node names an image ukey measures (with its backing chain); `raw`
        /// and `qcow2` nodes refer to other nodes by name. Nested definitions, `data-file`, a
        /// `backing` that names a node, and every other driver are refused.
        mutating func blockdev(_ argument: String, _ option: String) throws(HypervisorError) {
            var fields: [String: String] = [:]
            if argument.hasPrefix("{") {
                guard case .object(let members) = try QemuJSON(parsing: argument) else {
                    throw HypervisorError("\(option): not a JSON object")
                }
                for member in members {
                    switch member.value {
                    case .string(let text): fields[member.key] = text
                    case .number(let text): fields[member.key] = text
                    case .bool(let flag): fields[member.key] = flag ? "on" : "off"
                    case .null: fields[member.key] = "\u{0}null"
                    case .object, .array:
                        throw HypervisorError(
                            "\(option) \(member.key): a nested block node is refused; give each node a -blockdev of its own"
                        )
                    }
                }
            } else {
                for item in try QemuOpts(parsing: argument, option: option, implied: "driver", grammar: .keyval).items {
                    fields[item.key] = item.value
                }
            }
            let common: Set<String> = [
                "driver", "node-name", "discard", "cache.direct", "cache.no-flush", "read-only", "auto-read-only",
                "force-share", "detect-zeroes",
            ]
            let byDriver: [String: Set<String>] = [
                "file": ["filename", "locking", "aio", "aio-max-batch", "drop-cache"],
                "raw": ["file", "offset", "size"],
                "qcow2": [
                    "file", "backing", "lazy-refcounts", "pass-discard-request", "pass-discard-snapshot",
                    "pass-discard-other", "overlap-check", "cache-size", "l2-cache-size", "l2-cache-entry-size",
                    "refcount-cache-size", "cache-clean-interval",
                ],
            ]
            guard let driver = fields["driver"], let extra = byDriver[driver] else {
                throw HypervisorError(
                    "\(option) driver=\(fields["driver"] ?? "(none)"): only file, raw and qcow2 nodes are allowed"
                )
            }
            for key in fields.keys.sorted() where !common.contains(key) && !extra.contains(key) {
                throw HypervisorError(
                    "\(option) \(key) is refused: not a key of a \(driver) node that ukey-qemu knows to load no file"
                )
            }
            if let backing = fields["backing"], backing != "\u{0}null" {
                throw HypervisorError(
                    "\(option) backing=\(backing): a backing node named here replaces the image's own chain; name the backing file in the image (qemu-img rebase) or give null"
                )
            }
            if let file = fields["file"], file == "\u{0}null" {
                throw HypervisorError("\(option) file: null is not a node")
            }
            guard driver == "file" else { return }
            guard let filename = fields["filename"] else {
                throw HypervisorError("\(option): a file node needs filename")
            }
            disks.append(
                DomainXML.Disk(
                    source: try Self.imagePath(filename, option),
                    target: target(interface: "blockdev"),
                    format: nil
                )
            )
        }

        /// Named as the guest sees them: virtio vda, vdb...; IDE hda...; SCSI sda...; flash pflash0...
        mutating func target(interface: String) -> String {
            let prefix =
                [
                    "virtio": "vd", "scsi": "sd", "ide": "hd", "pflash": "pflash", "blockdev": "blockdev",
                    "none": "drive",
                ][interface] ?? interface
            let n = counts[prefix, default: 0]
            counts[prefix] = n + 1
            return ["pflash", "blockdev", "drive"].contains(prefix)
                ? "\(prefix)\(n)" : prefix + String(UnicodeScalar(UInt8(97 + min(n, 25))))
        }

        static func only(
            _ opts: QemuOpts,
            _ allowed: [String],
            _ option: String,
            why: String? = nil
        ) throws(HypervisorError) {
            for item in opts.items where !allowed.contains(item.key) {
                throw HypervisorError(
                    "\(option) \(item.key)= is not a key ukey-qemu knows to load no file\(why.map { " (\($0))" } ?? ""); refused"
                )
            }
        }

        static func flatJSON(_ json: QemuJSON, _ allowed: [String], _ option: String) throws(HypervisorError) {
            guard case .object(let members) = json else { throw HypervisorError("\(option): not a JSON object") }
            for member in members {
                guard allowed.contains(member.key) else {
                    throw HypervisorError(
                        "\(option) \(member.key) is not a key ukey-qemu knows to load no file; refused"
                    )
                }
                if case .object = member.value {
                    throw HypervisorError("\(option) \(member.key): a nested object is refused")
                }
                if case .array = member.value { throw HypervisorError("\(option) \(member.key): a list is refused") }
            }
        }

        /// A file QEMU opens by path: absolute (ukey-qemu runs QEMU in / so that no file of the
        /// caller's directory stands in for one of QEMU's own), and plain text.
        static func path(_ value: String, _ option: String) throws(HypervisorError) -> String {
            guard value.hasPrefix("/") else {
                throw HypervisorError("\(option) \(value): name files by absolute path (ukey-qemu runs QEMU in /)")
            }
            guard !value.utf8.contains(0), value.utf8.count <= 4096 else {
                throw HypervisorError("\(option): the path is not a file name")
            }
            return value
        }

        /// An image path as the block layer reads it: no `json:` pseudo-protocol, no `proto:`
        /// prefix (a ':' before any '/'), absolute.
        static func imagePath(_ value: String, _ option: String) throws(HypervisorError) -> String {
            if value.hasPrefix("json:") {
                throw HypervisorError(
                    "\(option) \(value.prefix(40))...: a json: file name describes block nodes ukey does not measure; refused"
                )
            }
            if let colon = value.firstIndex(of: ":"), !value[..<colon].contains("/") {
                throw HypervisorError(
                    "\(option) \(value): QEMU reads '\(value[..<colon]):' as a protocol, not a file; refused"
                )
            }
            return try path(value, option)
        }

        static let deviceDrivers: Set<String> = [
            "virtio-blk-pci", "virtio-blk", "virtio-net-pci", "virtio-net", "virtio-serial-pci", "virtio-serial",
            "virtserialport", "virtconsole",
            "virtio-rng-pci", "virtio-rng", "virtio-scsi-pci", "virtio-scsi", "scsi-hd", "scsi-cd", "ide-hd", "ide-cd",
            "e1000", "rtl8139",
            "tpm-crb", "tpm-tis", "usb-tablet", "usb-kbd", "usb-mouse", "qemu-xhci", "piix3-usb-uhci", "pvpanic",
            "isa-debugcon",
            "virtio-balloon-pci", "virtio-balloon", "virtio-keyboard-pci", "virtio-mouse-pci", "virtio-tablet-pci",
            "virtio-keyboard",
            "virtio-mouse", "virtio-tablet", "vhost-vsock-pci", "VGA", "cirrus-vga", "virtio-vga", "bochs-display",
            "isa-serial",
            "pci-bridge", "pcie-root-port", "i6300esb", "ich9-ahci", "ahci", "virtio-gpu-pci", "virtio-gpu",
            "usb-storage",
        ]
        /// Properties of the drivers above that name host files.
        static let deviceFileKeys: Set<String> = ["romfile", "file", "vhostfd", "pcap"]

        /// -device: a driver from the list, none of its file properties (romfile="" turns the
        /// ROM off and is allowed).
        static func device(_ argument: String, _ option: String) throws(HypervisorError) {
            var fields: [(key: String, value: String?)] = []
            if argument.hasPrefix("{") {
                guard case .object(let members) = try QemuJSON(parsing: argument) else {
                    throw HypervisorError("\(option): not a JSON object")
                }
                for member in members {
                    switch member.value {
                    case .object, .array: throw HypervisorError("\(option) \(member.key): a nested property is refused")
                    default: fields.append((member.key, member.value.stringValue))
                    }
                }
            } else {
                fields = try QemuOpts(parsing: argument, option: option, implied: "driver", grammar: .qemuOpts).items
                    .map { ($0.key, $0.value) }
            }
            guard let driver = fields.first(where: { $0.key == "driver" })?.value else {
                throw HypervisorError("\(option): no driver")
            }
            if driver == "help" || driver == "?" { return }
            guard deviceDrivers.contains(driver) else {
                throw HypervisorError("\(option) \(driver): not a device ukey-qemu knows to load no file; refused")
            }
            for field in fields {
                if field.key.contains(".") {
                    throw HypervisorError("\(option) \(field.key): a dotted property is refused")
                }
                if deviceFileKeys.contains(field.key) && !(field.key == "romfile" && field.value == "") {
                    throw HypervisorError(
                        "\(option) \(driver) \(field.key)= loads a host file ukey does not measure; refused"
                    )
                }
            }
        }

        /// A chardev spec of -serial, -monitor and the like: the kinds that read no host file.
        static func chardevSpec(_ spec: String, _ option: String) throws(HypervisorError) {
            var spec = Substring(spec)
            if spec.hasPrefix("mon:") { spec = spec.dropFirst(4) }
            if ["none", "null", "stdio", "pty", "vc", "msmouse"].contains(String(spec)) || spec.hasPrefix("vc:")
                || spec.hasPrefix("chardev:")
            {
                return
            }
            if option == "-monitor", spec.hasPrefix("none") { return }
            for prefix in ["file:", "unix:", "tcp:", "telnet:", "udp:", "websocket:"] where spec.hasPrefix(prefix) {
                return
            }
            throw HypervisorError(
                "\(option) \(spec): not a chardev ukey-qemu knows to read no host file (pipe:, /dev/... and the like are refused)"
            )
        }

        /// -chardev: null, socket, file (written), stdio, pty, vc, ringbuf, memory, udp.
        @discardableResult
        static func chardev(_ argument: String, _ option: String) throws(HypervisorError) -> QemuOpts {
            let opts = try QemuOpts(parsing: argument, option: option, implied: "backend", grammar: .qemuOpts)
            let backend = opts["backend"] ?? ""
            guard ["null", "socket", "file", "stdio", "pty", "vc", "ringbuf", "memory", "udp"].contains(backend) else {
                throw HypervisorError(
                    "\(option) \(backend): not a chardev ukey-qemu knows to read no host file (pipe, serial, tty, parallel... are refused)"
                )
            }
            let allowed = [
                "backend", "id", "path", "host", "port", "to", "ipv4", "ipv6", "wait", "server", "delay", "nodelay",
                "reconnect", "telnet", "tn3270",
                "websocket", "abstract", "tight", "logfile", "logappend", "mux", "localaddr", "localport", "append",
                "signal", "size",
                "width", "height", "cols", "rows",
            ]
            try only(opts, allowed, option)
            return opts
        }

        static func display(_ argument: String, _ option: String) throws(HypervisorError) {
            if argument.hasPrefix("vnc") { throw HypervisorError("\(option) vnc=: use -vnc") }
            let type: String?
            if argument.hasPrefix("{") {
                let json = try QemuJSON(parsing: argument)
                try flatJSON(
                    json,
                    [
                        "type", "full-screen", "window-close", "show-cursor", "gl", "grab-on-hover", "zoom-to-fit",
                        "show-tabs",
                    ],
                    option
                )
                type = json["type"]?.stringValue
            } else {
                let opts = try QemuOpts(parsing: argument, option: option, implied: "type", grammar: .keyval)
                try only(
                    opts,
                    [
                        "type", "full-screen", "window-close", "show-cursor", "gl", "grab-on-hover", "zoom-to-fit",
                        "show-tabs", "charset",
                    ],
                    option
                )
                type = opts["type"]
            }
            guard ["none", "curses", "gtk", "sdl"].contains(type ?? "") else {
                throw HypervisorError("\(option) \(type ?? ""): only none, curses, gtk and sdl")
            }
        }

        static func audio(_ argument: String, _ option: String) throws(HypervisorError) {
            let driver: String?
            if argument.hasPrefix("{") {
                let json = try QemuJSON(parsing: argument)
                try flatJSON(json, ["driver", "id", "timer-period"], option)
                driver = json["driver"]?.stringValue
            } else {
                let opts = try QemuOpts(parsing: argument, option: option, implied: "driver", grammar: .keyval)
                try only(opts, ["driver", "id", "timer-period", "model"], option)
                driver = opts["driver"]
            }
            guard driver == "none" else {
                throw HypervisorError(
                    "\(option) \(driver ?? ""): only the none audio driver (the others open host devices, servers or files)"
                )
            }
        }

        /// -netdev and -nic: user networking without its file and program keys, tap without
        /// scripts or helper, sockets, none.
        static func network(_ argument: String, _ option: String) throws(HypervisorError) {
            var fields: [String: String] = [:]
            if argument.hasPrefix("{") {
                guard case .object(let members) = try QemuJSON(parsing: argument) else {
                    throw HypervisorError("\(option): not a JSON object")
                }
                for member in members {
                    if case .object = member.value {
                        throw HypervisorError("\(option) \(member.key): a nested object is refused")
                    }
                    if case .array = member.value {
                        throw HypervisorError("\(option) \(member.key): a list is refused")
                    }
                    fields[member.key] = member.value.stringValue ?? ""
                }
            } else {
                for item in try QemuOpts(
                    parsing: argument,
                    option: option,
                    implied: "type",
                    grammar: .qemuOpts,
                    repeatable: ["hostfwd"]
                ).items {
                    fields[item.key] = item.value
                }
            }
            let type = fields["type"] ?? ""
            let common: Set<String> = ["type", "id", "model", "mac", "ipv4", "ipv6"]
            let byType: [String: Set<String>] = [
                "user": [
                    "net", "host", "hostname", "restrict", "dns", "dhcpstart", "domainname", "dnssearch", "hostfwd",
                    "ipv6-net", "ipv6-prefix", "ipv6-prefixlen", "ipv6-host", "ipv6-dns", "ipv6-prefix",
                ],
                "tap": [
                    "ifname", "script", "downscript", "vhost", "vhostforce", "queues", "poll-us", "sndbuf", "vnet_hdr",
                ],
                "socket": ["listen", "connect", "mcast", "udp", "localaddr"],
                "stream": ["addr", "server", "reconnect"],
                "dgram": ["local", "remote"],
                "none": [],
                "hubport": ["hubid", "netdev"],
            ]
            guard let extra = byType[type] else {
                throw HypervisorError(
                    "\(option) \(type): only user, tap (without scripts), socket, stream, dgram, hubport and none"
                )
            }
            for key in fields.keys.sorted() where !common.contains(key) && !extra.contains(key) {
                throw HypervisorError(
                    "\(option) \(type) \(key)= is not a key ukey-qemu knows to load no file or program; refused"
                )
            }
            if type == "tap" {
                for key in ["script", "downscript"] where fields[key] != "no" {
                    throw HypervisorError(
                        "\(option) tap: without \(key)=no QEMU runs /etc/qemu-if\(key == "script" ? "up" : "down") as a program; say \(key)=no"
                    )
                }
            }
        }

        static let objectTypes: Set<String> = [
            "memory-backend-ram", "memory-backend-memfd", "iothread", "rng-builtin", "rng-random", "throttle-group",
            "secret", "main-loop",
            "cryptodev-backend-builtin", "authz-simple", "thread-context",
        ]

        /// -object: types that read no host file (rng-random only from the kernel's random
        /// devices, a secret only from data=).
        static func object(_ argument: String, _ option: String) throws(HypervisorError) {
            var fields: [String: String?] = [:]
            if argument.hasPrefix("{") {
                guard case .object(let members) = try QemuJSON(parsing: argument) else {
                    throw HypervisorError("\(option): not a JSON object")
                }
                for member in members {
                    if case .object = member.value {
                        throw HypervisorError("\(option) \(member.key): a nested object is refused")
                    }
                    fields[member.key] = member.value.stringValue
                }
            } else {
                for item in try QemuOpts(
                    parsing: argument,
                    option: option,
                    implied: "qom-type",
                    grammar: .qemuOpts,
                    repeatable: ["host-nodes"]
                ).items {
                    fields[item.key] = item.value
                }
            }
            let type = (fields["qom-type"] ?? nil) ?? ""
            guard objectTypes.contains(type) else {
                throw HypervisorError(
                    "\(option) \(type): not an object type ukey-qemu knows to read no host file; refused"
                )
            }
            for key in [
                "mem-path", "file", "dir", "path", "evdev", "log", "addr", "fd", "dh-cert-file", "session-file",
                "sev-device",
            ] where fields[key] != nil {
                throw HypervisorError("\(option) \(type) \(key)= names a host file; refused")
            }
            if type == "rng-random", let filename = fields["filename"] ?? nil,
                !["/dev/urandom", "/dev/random", "/dev/hwrng"].contains(filename)
            {
                throw HypervisorError(
                    "\(option) rng-random filename=\(filename): only /dev/urandom, /dev/random or /dev/hwrng"
                )
            }
            if type != "rng-random", fields["filename"] != nil {
                throw HypervisorError("\(option) \(type) filename= names a host file; refused")
            }
        }

        /// -tpmdev: the chardev an emulator TPM connects through (a swtpm's control socket).
        static func tpm(_ argument: String, _ option: String) throws(HypervisorError) -> String {
            let opts = try QemuOpts(parsing: argument, option: option, implied: "type", grammar: .qemuOpts)
            switch opts["type"] {
            case "emulator"?:
                try only(opts, ["type", "id", "chardev"], option)
                guard let chardev = opts["chardev"] else { throw HypervisorError("\(option) emulator needs chardev=") }
                return chardev
            case "passthrough"?:
                throw HypervisorError(
                    "\(option) passthrough\(opts["path"].map { " (path=\($0))" } ?? ""): the host's own TPM, whose PCRs ukeyd's registers may be and a guest could extend; give the guest the vTPM ukeyd runs for it"
                )
            default: throw HypervisorError("\(option) \(opts["type"] ?? ""): only emulator (a vTPM on a socket)")
            }
        }
    }
}
