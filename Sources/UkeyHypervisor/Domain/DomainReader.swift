/// The default-deny reading of a domain: every element must be one libvirt 9.0's schema has at
/// that place (`LibvirtDomainSchema`), and every element that can make QEMU (or libvirt for it)
/// read a host file is either measured or refused, by name:
///
/// | what | measured as | refused |
/// | --- | --- | --- |
/// | `<os>` | `<loader>`, `<nvram>` and its template, `<kernel>`, `<initrd>`, `<cmdline>`, `<dtb>`, `<acpi><table>`; QEMU's SeaBIOS when there is no `<loader>` | `firmware=` auto-selection (libvirt picks the files after the hook), `<init>`, `<root>` |
/// | `<disk>` | `type='file'` and `'block'` sources of format raw or qcow2, and the chain under each (a `<backingStore>` must agree with the images' headers, layer by layer) | network, volume, dir, nvme, vhostuser disks; other formats; `<mirror>`, `<slices>`, `<reservations>`, `fdgroup` |
/// | devices | | `<filesystem>`, `<smartcard>`, `<shmem>`, nvdimm and virtio-pmem `<memory>`, `<rom file>`, interface `<script>`, vhostuser and vdpa interfaces, vhost-user video, chardevs of type dev or pipe, an `<emulator>` not on the list |
/// | elsewhere | | `<qemu:commandline>`, `<qemu:override>`, `<qemu:capabilities>`, `<qemu:deprecation>`, fw_cfg `<sysinfo>` entries, any other namespace, any element not in the schema |
///
/// And anywhere else, an attribute or text that names a host path (begins with `/`) is refused
/// unless it is one the reader knows to load nothing into the guest: an output file, a socket, a
/// device node of the kind named (`/dev/urandom` for an RNG), a cgroup partition. `<metadata>`
/// is read only for ukey's own element; QEMU never sees it.
enum DomainReader {
    /// The emulators libvirt may run for a domain: QEMU's own binaries, part of the measured host.
    static let emulators: Set<String> = [
        "/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-system-i386", "/usr/bin/qemu-kvm", "/usr/libexec/qemu-kvm",
    ]

    /// Elements refused wherever they are found, and why.
    static let refusedElements: [String: String] = [
        "domain/os/firmware":
            "asks libvirt to pick the firmware after the hook ran; name the <loader> (and <nvram>) instead",
        "domain/os/init": "is not for QEMU", "domain/os/initarg": "is not for QEMU",
        "domain/os/initenv": "is not for QEMU",
        "domain/os/initdir": "is not for QEMU", "domain/os/inituser": "is not for QEMU",
        "domain/os/initgroup": "is not for QEMU",
        "domain/os/root": "is not for QEMU", "domain/bootloader": "runs a host program",
        "domain/bootloader_args": "runs a host program",
        "domain/idmap": "is not for QEMU",
        "domain/devices/filesystem": "shows a host directory to the guest (9p or virtiofs), which ukey cannot measure",
        "domain/devices/smartcard": "reads a certificate database from the host",
        "domain/devices/shmem": "maps host shared memory into the guest",
        "domain/devices/disk/mirror": "copies the disk to another file",
        "domain/devices/disk/source/slices": "shows a window of a file ukey measures whole",
        "domain/devices/disk/source/reservations": "starts a persistent-reservation helper",
        "domain/devices/interface/script": "runs a host program as root",
        "domain/devices/interface/downscript": "runs a host program as root",
        "domain/os/nvram/source":
            "names an NVRAM store of a kind ukey does not measure; give the varstore's path as <nvram>'s text",
    ]

    /// Host paths the reader knows load nothing into the guest (written files, sockets, device
    /// nodes of the named kind, cgroup names), by `element path@attribute` or `element path#text`.
    static let knownPaths: [String: @Sendable (String) -> Bool] = {
        let any: @Sendable (String) -> Bool = { _ in true }
        let device: @Sendable (String) -> Bool = { $0.hasPrefix("/dev/") }
        var known: [String: @Sendable (String) -> Bool] = [
            "domain/devices/graphics@socket": any, "domain/devices/graphics/listen@socket": any,
            "domain/devices/graphics/gl@rendernode": device,
            "domain/devices/video/model/acceleration@rendernode": device,
            "domain/devices/audio@path": any, "domain/devices/lease/target@path": any,
            "domain/devices/input/source@evdev": device, "domain/devices/input/source@dev": device,
            "domain/devices/interface/backend@tap": device, "domain/devices/interface/backend@vhost": device,
            "domain/devices/rng/backend#text": { ["/dev/urandom", "/dev/random", "/dev/hwrng"].contains($0) },
            "domain/devices/tpm/backend/device@path": { $0.wholeMatch(of: /\/dev\/tpm(rm)?[0-9]+/) != nil },
            "domain/devices/tpm/backend/source@path": any,
            "domain/blkiotune/device/path#text": device, "domain/resource/partition#text": any,
            "domain/devices/redirdev/source@path": any,
        ]
        for chardev in ["serial", "console", "parallel", "channel", "redirdev", "rng/backend"] {
            // file (written), unix (a socket), pty: their types are checked.
            known["domain/devices/\(chardev)/source@path"] = any
            known["domain/devices/\(chardev)/log@file"] = any
        }
        return known
    }()

    static func read(_ root: XMLTree.Element, defaultFirmware: String?) throws(HypervisorError) -> DomainXML {
        guard root.name == "domain" else { throw HypervisorError("the XML is not a libvirt <domain>") }
        var domain = DomainXML()
        domain.name = root.child("name")?.trimmedText ?? ""
        guard !domain.name.isEmpty else { throw HypervisorError("the domain XML has no <name>") }
        // What the gate reads and measures first (its refusals say the most), then the walk of
        // everything for what nobody read.
        // No <os> is an empty one (libvirt writes one always): QEMU's SeaBIOS is still what runs.
        try readOS(
            root.child("os") ?? XMLTree.Element(name: "os", attributes: [:], text: "", children: []),
            into: &domain,
            defaultFirmware: defaultFirmware
        )
        if let devices = root.child("devices") { try readDevices(devices, into: &domain) }
        var reader = Reader()
        try reader.walk(root, path: "domain", into: &domain)
        return domain
    }

    static func readOS(
        _ os: XMLTree.Element,
        into domain: inout DomainXML,
        defaultFirmware: String?
    ) throws(HypervisorError) {
        if let firmware = os.attributes["firmware"] {
            throw HypervisorError(
                "<os firmware='\(firmware)'> asks libvirt to pick the firmware after the hook ran; name the <loader> (and <nvram>) instead"
            )
        }
        domain.kernel = os.child("kernel")?.trimmedText
        domain.initrd = os.child("initrd")?.trimmedText
        domain.cmdline = os.child("cmdline")?.text  // exactly as given: it is measured
        domain.dtb = os.child("dtb")?.trimmedText
        domain.acpiTables = os.child("acpi")?.all("table").map(\.trimmedText) ?? []
        if let loader = os.child("loader") {
            if let type = loader.attributes["type"], type != "rom" && type != "pflash" {
                throw HypervisorError("<loader type='\(type)'>: only rom and pflash")
            }
            domain.loader = loader.trimmedText
        }
        if let nvram = os.child("nvram") {
            if let type = nvram.attributes["type"], type != "file" {
                throw HypervisorError("<nvram type='\(type)'>: only a file varstore")
            }
            domain.nvram = nvram.trimmedText.isEmpty ? nil : nvram.trimmedText
            domain.nvramTemplate = nvram.attributes["template"]
        }
        let machine = os.child("type")?.attributes["machine"] ?? "pc"
        if domain.loader == nil {
            // QEMU runs its own SeaBIOS: for pc and q35, bios-256k.bin from its data directories.
            guard machine == "pc" || machine == "q35" || machine.hasPrefix("pc-i440fx-") || machine.hasPrefix("pc-q35-")
            else {
                throw HypervisorError(
                    "machine '\(machine)' with no <loader>: ukey knows which firmware QEMU runs only for pc and q35; name the <loader>"
                )
            }
            guard let defaultFirmware else {
                throw HypervisorError(
                    "no <loader>, and QEMU's default firmware (bios-256k.bin) is not in \(QemuCommandLine.dataDirectories.joined(separator: ", "))"
                )
            }
            domain.loader = defaultFirmware
        }
        for (what, path) in [
            ("kernel", domain.kernel), ("initrd", domain.initrd), ("dtb", domain.dtb), ("loader", domain.loader),
            ("nvram", domain.nvram), ("nvram template", domain.nvramTemplate),
        ] {
            if let path, !path.hasPrefix("/") { throw HypervisorError("<\(what)> '\(path)' is not an absolute path") }
        }
    }

    static func readDevices(_ devices: XMLTree.Element, into domain: inout DomainXML) throws(HypervisorError) {
        if let emulator = devices.child("emulator")?.trimmedText {
            guard emulators.contains(emulator) else {
                throw HypervisorError(
                    "<emulator>\(emulator)</emulator> is not one of QEMU's own binaries (\(emulators.sorted().joined(separator: ", ")))"
                )
            }
            domain.emulator = emulator
        }
        for disk in devices.all("disk") { domain.disks.append(try readDisk(disk, index: domain.disks.count)) }
        for interface in devices.all("interface") {
            let type = interface.attributes["type"] ?? ""
            guard !["vhostuser", "vdpa"].contains(type) else {
                throw HypervisorError(
                    "<interface type='\(type)'>: the device is served by a host process ukey does not measure"
                )
            }
            if let rom = interface.child("rom"), let file = rom.attributes["file"], !file.isEmpty {
                throw HypervisorError("<interface><rom file='\(file)'>: an option ROM ukey does not measure")
            }
        }
        for hostdev in devices.all("hostdev") {
            if let rom = hostdev.child("rom"), let file = rom.attributes["file"], !file.isEmpty {
                throw HypervisorError("<hostdev><rom file='\(file)'>: an option ROM ukey does not measure")
            }
        }
        for memory in devices.all("memory") where ["nvdimm", "virtio-pmem"].contains(memory.attributes["model"] ?? "") {
            throw HypervisorError(
                "<memory model='\(memory.attributes["model"]!)'>: backs guest memory with a host file"
            )
        }
        for video in devices.all("video") where video.child("driver")?.attributes["name"] == "vhostuser" {
            throw HypervisorError("<video><driver name='vhostuser'>: runs a host program ukey does not measure")
        }
        for kind in ["serial", "console", "parallel", "channel", "redirdev"] {
            for chardev in devices.all(kind) {
                let type = chardev.attributes["type"] ?? "pty"
                guard
                    [
                        "pty", "file", "unix", "null", "vc", "tcp", "udp", "spicevmc", "spiceport", "qemu-vdagent",
                        "dbus", "stdio",
                    ].contains(type)
                else {
                    throw HypervisorError(
                        "<\(kind) type='\(type)'>: feeds the guest from a host \(type == "pipe" ? "file" : "device") ukey does not measure"
                    )
                }
                for source in chardev.all("source") {
                    guard let path = source.attributes["path"] else { continue }
                    domain.sockets.append((path, "<\(kind) type='\(type)'>"))
                }
                if kind == "channel", chardev.child("target")?.attributes["type"] == "virtio",
                    chardev.child("target")?.attributes["name"] == DomainXML.guardChannelName
                {
                    domain.guardChannels.append(chardev.child("source")?.attributes["path"] ?? "")
                }
            }
        }
        for graphics in devices.all("graphics") {
            if let socket = graphics.attributes["socket"] { domain.sockets.append((socket, "<graphics socket>")) }
            for listen in graphics.all("listen") {
                if let socket = listen.attributes["socket"] {
                    domain.sockets.append((socket, "<graphics><listen socket>"))
                }
            }
        }
        for tpm in devices.all("tpm") {
            guard let backend = tpm.child("backend") else { continue }
            if let path = backend.child("source")?.attributes["path"] {
                domain.sockets.append((path, "<tpm><backend><source>"))
            }
            if backend.attributes["type"] == "passthrough" {
                throw HypervisorError(
                    "<tpm><backend type='passthrough'> gives the guest the host's own TPM, whose PCRs ukeyd's registers may be and a guest could extend; give it the vTPM ukeyd runs for it"
                )
            }
            if backend.attributes["type"] == "external" {
                guard let source = backend.child("source"), source.attributes["type"] == "unix",
                    let path = source.attributes["path"]
                else {
                    throw HypervisorError(
                        "<tpm><backend type='external'> needs <source type='unix' path=...>: the socket of the vTPM ukeyd runs"
                    )
                }
                domain.vtpmSockets.append(path)
            }
        }
    }

    static func readDisk(_ disk: XMLTree.Element, index: Int) throws(HypervisorError) -> DomainXML.Disk {
        let type = disk.attributes["type"] ?? "file"
        let target = disk.child("target")?.attributes["dev"]
        let name = target ?? "#\(index + 1)"
        guard type == "file" || type == "block" else {
            throw HypervisorError(
                "disk \(name) is of type '\(type)', which ukey cannot measure; use a file or block disk"
            )
        }
        let format = disk.child("driver")?.attributes["type"] ?? "raw"
        guard format == "raw" || format == "qcow2" else {
            throw HypervisorError("disk \(name) is of format '\(format)': ukey reads raw and qcow2 images only")
        }
        var result = DomainXML.Disk(
            type: type,
            device: disk.attributes["device"] ?? "disk",
            source: nil,
            target: target,
            format: format
        )
        if let source = disk.child("source") {
            if source.attributes["fdgroup"] != nil {
                throw HypervisorError("disk \(name): fdgroup hands QEMU descriptors ukey did not open")
            }
            result.source = source.attributes[type == "file" ? "file" : "dev"]
            if let path = result.source, !path.hasPrefix("/") {
                throw HypervisorError("disk \(name): '\(path)' is not an absolute path")
            }
        }
        result.readOnly = disk.child("readonly") != nil
        result.shareable = disk.child("shareable") != nil
        // The chain as written: each <backingStore type=...> a layer, an empty one the end.
        var layers: [DomainXML.BackingLayer] = []
        var next = disk.child("backingStore")
        var terminated = false
        while let store = next {
            guard let layerType = store.attributes["type"] else {
                terminated = true
                break
            }
            guard layerType == "file" || layerType == "block" else {
                throw HypervisorError("disk \(name): a <backingStore type='\(layerType)'> ukey cannot measure")
            }
            let layerFormat = store.child("format")?.attributes["type"] ?? ""
            guard layerFormat == "raw" || layerFormat == "qcow2" else {
                throw HypervisorError("disk \(name): a <backingStore> of format '\(layerFormat)'")
            }
            guard let path = store.child("source")?.attributes[layerType == "file" ? "file" : "dev"],
                path.hasPrefix("/")
            else {
                throw HypervisorError("disk \(name): a <backingStore> without an absolute source path")
            }
            layers.append(DomainXML.BackingLayer(path: path, format: layerFormat))
            next = store.child("backingStore")
        }
        if disk.child("backingStore") != nil {
            result.backingStore = layers
            result.backingStoreTerminated = terminated
        }
        return result
    }

    /// The walk of the whole tree: the schema's vocabulary, the refused elements, and the net for
    /// host paths nobody accounted for.
    struct Reader {
        /// Paths that are read and measured (or checked) by `read`, so the net lets them pass.
        static let measuredPaths: Set<String> = [
            "domain/os/kernel#text", "domain/os/initrd#text", "domain/os/dtb#text", "domain/os/loader#text",
            "domain/os/nvram#text",
            "domain/os/nvram@template", "domain/os/acpi/table#text", "domain/devices/emulator#text",
            "domain/devices/disk/source@file",
            "domain/devices/disk/source@dev", "domain/devices/disk/backingStore/source@file",
            "domain/devices/disk/backingStore/source@dev",
        ]

        mutating func walk(
            _ element: XMLTree.Element,
            path: String,
            into domain: inout DomainXML
        ) throws(HypervisorError) {
            if path == "domain/metadata" {
                try metadata(element, into: &domain)
                return
            }
            if element.name.contains(":") || element.name.hasPrefix("{") {
                if element.name.hasPrefix("qemu:") {
                    throw HypervisorError(
                        "<\(element.name)> hands QEMU options or properties that libvirt passes through unread; refused"
                    )
                }
                throw HypervisorError(
                    "<\(element.name)> at \(path.dropLast(element.name.count + 1)) belongs to a namespace libvirt's QEMU driver does not read; refused"
                )
            }
            if let reason = DomainReader.refusedElements[path] {
                throw HypervisorError("<\(element.name)> (\(path)) is refused: it \(reason)")
            }
            guard LibvirtDomainSchema.elementPaths.contains(path) else {
                throw HypervisorError(
                    "<\(element.name)> at \(path) is not an element of libvirt 9.0's domain schema there; refused"
                )
            }
            if path == "domain/sysinfo/entry", element.attributes["file"] != nil {
                throw HypervisorError(
                    "<sysinfo type='fwcfg'><entry file=...> gives the guest a host file ukey does not measure"
                )
            }
            for (attribute, value) in element.attributes.sorted(by: { $0.key < $1.key }) where value.hasPrefix("/") {
                try net("\(path)@\(attribute)", value, what: "<\(element.name) \(attribute)='\(value)'>")
            }
            let text = element.trimmedText
            if text.hasPrefix("/") { try net("\(path)#text", text, what: "<\(element.name)>\(text)</\(element.name)>") }
            for child in element.children {
                // A chain of backing stores is one level of the schema's vocabulary.
                let childPath =
                    child.name == "backingStore" && path.hasSuffix("/backingStore") ? path : "\(path)/\(child.name)"
                try walk(child, path: childPath, into: &domain)
            }
        }

        func net(_ key: String, _ value: String, what: String) throws(HypervisorError) {
            if Self.measuredPaths.contains(key) { return }
            if let known = DomainReader.knownPaths[key], known(value) { return }
            throw HypervisorError("\(what) names a host path ukey neither measures nor knows to load nothing; refused")
        }

        /// ukey's element, by its namespace; anything else in <metadata> is for other tools.
        func metadata(_ element: XMLTree.Element, into domain: inout DomainXML) throws(HypervisorError) {
            for child in element.children {
                switch child.name {
                case "ukey:entity":
                    domain.entity = child.trimmedText
                    if let session = child.attributes["session"] { domain.session = session }
                case "ukey:session": domain.session = child.trimmedText
                default: continue
                }
            }
        }
    }
}
